#!/usr/bin/env python3
"""P4: the ``kfold`` audit with k = 5 against 5 x one training of the same size (the tuner
called directly).

Both sides on the triage demo (``lora`` on MiniLM, the suite's tuner options and training
block, one epoch per fold, checkpoints off as ``kfold`` turns them off), on the same seeded
stratified ``max_rows`` subsample cut into the same 5 stratified folds
(``kfold.subsample`` / ``kfold.fold_indices``). auditft side: the ``kfold`` audit plugin's
``run`` through the plugin manager (as ``auditft run`` runs it: fresh adapter per fold, held-out
and train-row scoring, base-model linear probe on the same folds, statistics). Baseline: for
each fold, ``tuner.tune`` on the fold's training rows, seeded as ``kfold`` seeds it, nothing
else. Each side is one fresh process; the order alternates over ``--repeats``; best of each.
The auditft side also reports where its time beyond the trainings goes.

``--what-if trainsample`` measures a recommended core change, applied by monkeypatching inside
the auditft child (nothing under auditft/ is edited): each fold's train-row accuracy (for the
generalisation gap) is scored on a seeded sample of its training rows as large as its held-out
fold, as ``kfold`` already does for generation, instead of on all of them. Such a run writes
``results/p4-whatif.json``.

``--what-if heldout-only`` measures the floor of this design instead (nothing to ship): each
fold's model is scored on its held-out rows and on one training row, so the generalisation
gap's evidence is gone and what is left is the least any k-fold audit must do beyond the
trainings (a fresh adapter per fold scored on its held-out fold, the base model on the same
folds). It writes ``results/p4-floor.json``.

    .venv/bin/python benchmarks/p4_kfold.py [--quick] [--max-rows 600] [--repeats 1] [--epochs 1]
                                            [--what-if trainsample|heldout-only]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

SUITE = "suites/triage-demo.yaml"
TARGET = 1.10
K = 5


def _prepared(suite_path: str):
    _bench.quiet()
    import datasets  # noqa: F401  (heavy imports before any clock starts, both sides)
    import peft  # noqa: F401
    import torch  # noqa: F401

    _bench.silence_libraries()
    from auditft.plugins import make_plugin_manager
    from auditft.run import prepare

    pm = make_plugin_manager(entry_points=False, env={})
    return pm, prepare(Path(suite_path), pm)


def _train_sample(split) -> list:
    """The recommended change: a seeded sample of the fold's training rows as large as its
    held-out fold."""
    import numpy as np

    n = len(split.test)
    if len(split.train) <= n:
        return split.train
    keep = sorted(np.random.default_rng(len(split.train)).choice(len(split.train), size=n, replace=False))
    return [split.train[int(j)] for j in keep]


#: what a fold's model is scored on for its train accuracy, per ``--what-if``
TRAIN_ROWS = {"trainsample": _train_sample,
              "heldout-only": lambda split: split.train[:1]}  # the floor: one row keeps the code path


def _patch_scored_train_rows(what_if: str) -> None:
    """Score each fold's train accuracy on ``TRAIN_ROWS[what_if](the fold's split)``."""
    from dataclasses import replace

    from auditft.default_plugins.audits.kfold import scoring

    original, pick = scoring.evaluate_classification, TRAIN_ROWS[what_if]

    def patched(session, split):
        split = replace(split, train=pick(split))
        session.data = split
        return original(session, split)

    scoring.evaluate_classification = patched


def child_auditft(suite_path: str, out: str, what_if: str = "") -> dict:
    pm, p = _prepared(suite_path)
    if what_if:
        _patch_scored_train_rows(what_if)
    from auditft.inference import ModelSession
    from auditft.jobs import AuditJob
    from auditft.retraining import CoreRetrainer
    from auditft.isolation import run_audit as _run_audit

    tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
    training = p.suite.tuner.training
    session = ModelSession(tuner=tuner, base=p.base, data=p.data, adapter_dir=Path(out) / "adapter",
                           max_length=training.max_length, batch_size=training.eval_batch_size, seed=p.suite.seed)
    started = time.perf_counter()
    result = _run_audit(pm.audits.get("kfold"), AuditJob(suite=p.suite, task=p.suite.task, data=p.data,
                                                         options=p.audit_options["kfold"], seed=p.suite.seed,
                                                         models=session, work_dir=Path(out) / "work",
                                                         retrain=CoreRetrainer(p.suite, session, Path(out) / "work")))
    total = time.perf_counter() - started
    if result.error:
        raise RuntimeError(result.error)
    folds = result.evidence["folds"]
    tune = sum(f["tune_seconds"] for f in folds)
    per_fold = sum(f["fold_seconds"] for f in folds)
    return {"side": "auditft", "seconds": round(total, 3),
            "breakdown": {"tune_calls": round(tune, 3),
                          "trainer_train": round(sum(f["train_seconds"] for f in folds), 3),
                          "fold_scoring (adapter reload + inference on held-out and train rows)": round(per_fold - tune, 3),
                          "outside folds (base embeddings + folding + statistics)": round(total - per_fold, 3)},
            "steps": [f["steps"] for f in folds], "n_train": [f["n_train"] for f in folds],
            "n_heldout": [f["n_heldout"] for f in folds],
            "kfold_mean_accuracy": result.metrics["kfold_mean_accuracy"].value,
            "peak_rss_mb": _bench.peak_rss_mb()}


def child_baseline(suite_path: str, out: str) -> dict:
    pm, p = _prepared(suite_path)
    from transformers import set_seed

    from auditft.data import SplitData
    from auditft.default_plugins.audits.kfold import fold_indices, subsample
    from auditft.jobs import TuneJob

    options = p.audit_options["kfold"]
    tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
    training = p.suite.tuner.training.model_copy(update={"checkpoint_steps": 0})
    available = list(p.data.train) + list(p.data.validation)
    keep = subsample(len(available), options.max_rows, p.suite.seed, [int(ex.label) for ex in available])
    rows = [available[i] for i in keep]
    folds = fold_indices(len(rows), options.k, p.suite.seed, [int(ex.label) for ex in rows])
    started = time.perf_counter()
    steps, n_train = [], []
    for i, (train_idx, _held) in enumerate(folds):
        split = SplitData(task=p.data.task, labels=list(p.data.labels), group_columns=list(p.data.group_columns),
                          train=[rows[j] for j in train_idx], validation=[], test=[])
        adapter_dir = Path(out) / f"fold-{i}" / "adapter"
        adapter_dir.mkdir(parents=True)
        set_seed(p.suite.seed + i)
        result = tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=split, training=training,
                                    options=p.tuner_options, seed=p.suite.seed, adapter_dir=adapter_dir,
                                    work_dir=Path(out) / f"fold-{i}"))
        steps.append(result.steps)
        n_train.append(len(train_idx))
    return {"side": "baseline", "seconds": round(time.perf_counter() - started, 3), "steps": steps,
            "n_train": n_train, "peak_rss_mb": _bench.peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 rows, 2 steps per fold")
    parser.add_argument("--max-rows", type=int, default=None, help="kfold max_rows (default 600; quick 60)")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per side (default 1)")
    parser.add_argument("--epochs", type=int, default=1,
                        help="epochs per fold (default 1, the demo's; other values write results/p4-epochs<N>.json)")
    parser.add_argument("--what-if", default="", choices=["", *TRAIN_ROWS],
                        help="score fewer training rows per fold (monkeypatched in the child): "
                             "trainsample, the recommended change; heldout-only, the design's floor")
    parser.add_argument("--child", nargs=4, metavar=("SIDE", "SUITE", "OUT", "WHATIF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, suite, out, what_if = args.child
        what_if = "" if what_if == "-" else what_if
        print(json.dumps(child_auditft(suite, out, what_if) if side == "auditft" else child_baseline(suite, out)))
        return
    _bench.quiet()
    max_rows = args.max_rows or (60 if args.quick else 600)
    repeats = args.repeats or 1
    training = {"epochs": args.epochs}
    if args.quick:
        training["max_steps"] = 2
    machine = _bench.Machine()
    runs: dict[str, list[dict]] = {"auditft": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        suite = _bench.derived_suite(SUITE, Path(tmp), name="bench-p4", training=training,
                                     audits=[{"kind": "kfold", "options": {"k": K, "max_rows": max_rows}}])
        for r in range(repeats):
            for side in (("auditft", "baseline") if r % 2 == 0 else ("baseline", "auditft")):
                runs[side].append(_bench.run_child(__file__, "--child", side, str(suite), str(Path(tmp) / f"{side}-{r}"),
                                                   args.what_if or "-"))
                print(f"  {side} run {r + 1}: {runs[side][-1]['seconds']:.1f} s", file=sys.stderr)
    best = {side: min(x["seconds"] for x in v) for side, v in runs.items()}
    ratio = best["auditft"] / best["baseline"]
    fastest = min(runs["auditft"], key=lambda x: x["seconds"])
    figures = {"k": K, "max_rows": max_rows, "training": training, "repeats": repeats, "what_if": args.what_if or None,
               "auditft_seconds": best["auditft"], "baseline_seconds": best["baseline"],
               "same_steps": runs["auditft"][0]["steps"] == runs["baseline"][0]["steps"],
               "auditft_breakdown": fastest["breakdown"],
               "train_only_ratio": round(fastest["breakdown"]["tune_calls"] / best["baseline"], 4),
               "runs": runs}
    _bench.finish("P4", what="kfold audit (k=5) vs 5 x tuner.tune of the same size",
                  metric="ratio", value=round(ratio, 4), op="<=", target=TARGET, quick=args.quick, machine=machine,
                  figures=figures,
                  command=f".venv/bin/python benchmarks/p4_kfold.py --max-rows {max_rows} --repeats {repeats}"
                          + (f" --what-if {args.what_if}" if args.what_if else "")
                          + (f" --epochs {args.epochs}" if args.epochs != 1 else ""),
                  variant="-".join(v for v in ({"": "", "trainsample": "whatif", "heldout-only": "floor"}[args.what_if],
                                                  f"epochs{args.epochs}" if args.epochs != 1 else "") if v))


if __name__ == "__main__":
    main()
