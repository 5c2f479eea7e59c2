#!/usr/bin/env python3
"""P2: inference of the classification audits (``accuracy`` + ``fairness`` on the triage demo's
test set) against a naive loop calling a transformers ``pipeline("text-classification")`` one
text at a time on the same fine-tuned model.

Setup (not timed): the demo suite's ``lora`` adapter is trained for a few steps through the
tuner, as ``auditft run`` does, and loaded once through the tuner's ``load`` (the audit path).
auditft side: ``ModelSession.adapter_proba("test")``, the one batched, length-bucketed
``inference_mode`` pass both audits read (``eval_batch_size`` 64). Baseline: ``pipeline(...)``
on the very same model object, ``pipe(text, top_k=None, truncation=True, max_length=64)`` per
text. Throughput = test rows / second; the two alternate, best of ``--repeats`` each; the
predictions of both are compared. Then the two audits run end to end on a fresh
``ModelSession`` (adapter load, base-model linear probe, bootstrap, fairness statistics) for
the per-phase breakdown.

    .venv/bin/python benchmarks/p2_classification_inference.py [--quick] [--rows 600] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

SUITE = "suites/triage-demo.yaml"
TARGET = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="64 test rows, 1 repeat, 2 training steps, base probe on 200 train rows")
    parser.add_argument("--rows", type=int, default=None, help="test rows (default all 600; quick 64)")
    parser.add_argument("--repeats", type=int, default=None, help="timings per side (default 3; quick 1)")
    parser.add_argument("--train-steps", type=int, default=None, help="setup training steps (default 30; quick 2)")
    args = parser.parse_args()
    _bench.quiet()
    repeats = args.repeats or (1 if args.quick else 3)
    train_steps = args.train_steps or (2 if args.quick else 30)
    machine = _bench.Machine()

    import numpy as np
    import torch
    from transformers import pipeline, set_seed

    _bench.silence_libraries()
    torch.set_num_threads(_bench.THREADS)
    from auditft.data import SplitData
    from auditft.inference import ModelSession
    from auditft.jobs import AuditJob, TuneJob
    from auditft.plugins import make_plugin_manager
    from auditft.isolation import run_audit as _run_audit
    from auditft.plan import prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        suite_path = _bench.derived_suite(
            SUITE, tmp_path, name="bench-p2", training={"max_steps": train_steps, "checkpoint_steps": 0},
            audits=[{"kind": "accuracy"}, {"kind": "fairness", "options": {"min_group_size": 30}}])
        pm = make_plugin_manager(entry_points=False, env={})
        p = prepare(suite_path, pm)
        rows = args.rows or (64 if args.quick else len(p.data.test))
        probe_rows = 200 if args.quick else len(p.data.train)  # the base probe is fitted on train
        data = SplitData(task=p.data.task, labels=list(p.data.labels), group_columns=list(p.data.group_columns),
                         train=list(p.data.train[:probe_rows]), validation=list(p.data.validation),
                         test=list(p.data.test[:rows]))
        tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
        adapter_dir = tmp_path / "adapter"
        adapter_dir.mkdir()
        set_seed(p.suite.seed)
        started = time.perf_counter()
        tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=p.data,
                           training=p.suite.tuner.training, options=p.tuner_options, seed=p.suite.seed,
                           adapter_dir=adapter_dir, work_dir=tmp_path / "work"))
        setup_s = time.perf_counter() - started
        training = p.suite.tuner.training

        def session() -> ModelSession:
            return ModelSession(tuner=tuner, base=p.base, data=data, adapter_dir=adapter_dir,
                                max_length=training.max_length, batch_size=training.eval_batch_size,
                                seed=p.suite.seed)

        shared = session()
        model, tokenizer = shared.adapter_model()  # one load through the tuner, used by both sides
        pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
        texts = [ex.text for ex in data.test]
        kwargs = {"top_k": None, "truncation": True, "max_length": training.max_length}
        pipe(texts[0], **kwargs)  # warm-up both paths once
        shared.adapter_proba("test")

        def auditft_pass() -> tuple[float, np.ndarray]:
            shared._cache.pop("adapter_proba:test", None)  # recompute: the cached pass is the timed thing
            started = time.perf_counter()
            proba = shared.adapter_proba("test")
            return time.perf_counter() - started, proba

        def naive_pass() -> tuple[float, np.ndarray]:
            started = time.perf_counter()
            out = [pipe(text, **kwargs) for text in texts]
            elapsed = time.perf_counter() - started
            id2label = model.config.id2label
            order = [id2label[i] for i in range(len(id2label))]
            return elapsed, np.array([[{d["label"]: d["score"] for d in row}[name] for name in order] for row in out])

        times: dict[str, list[float]] = {"auditft": [], "baseline": []}
        probas = {}
        for r in range(repeats):
            for side in (("auditft", "baseline") if r % 2 == 0 else ("baseline", "auditft")):
                elapsed, probas[side] = auditft_pass() if side == "auditft" else naive_pass()
                times[side].append(elapsed)
                print(f"  {side} pass {r + 1}: {elapsed:.2f} s ({rows / elapsed:.0f} rows/s)", file=sys.stderr)
        agree = float((probas["auditft"].argmax(1) == probas["baseline"].argmax(1)).mean())
        max_diff = float(np.abs(probas["auditft"] - probas["baseline"]).max())
        best = {side: min(v) for side, v in times.items()}
        throughput = {side: rows / best[side] for side in best}
        ratio = throughput["auditft"] / throughput["baseline"]
        del pipe, shared, model

        # -- the two audits end to end, on a fresh session, as run.py runs them ---------------
        fresh = session()
        phases = {}
        started = time.perf_counter()
        fresh.adapter_model()
        phases["load_adapter"] = time.perf_counter() - started
        mark = time.perf_counter()
        fresh.adapter_proba("test")
        phases["adapter_inference_test"] = time.perf_counter() - mark
        mark = time.perf_counter()
        fresh.base_probe_proba("test")
        phases["base_probe (embed train+test, fit logistic regression)"] = time.perf_counter() - mark
        for spec in p.suite.audits:
            mark = time.perf_counter()
            result = _run_audit(pm.audits.get(spec.kind), AuditJob(
                suite=p.suite, task=p.suite.task, data=data, options=p.audit_options[spec.kind], seed=p.suite.seed,
                models=fresh, work_dir=tmp_path / "work"))
            phases[f"audit {spec.kind} (statistics; inference cached)"] = time.perf_counter() - mark
            if result.error:
                raise RuntimeError(result.error)
        audits_total = time.perf_counter() - started

    figures = {
        "test_rows": rows, "probe_train_rows": probe_rows, "repeats": repeats, "eval_batch_size": training.eval_batch_size,
        "setup_training_steps": train_steps, "setup_seconds": round(setup_s, 2),
        "auditft_seconds": round(best["auditft"], 4), "baseline_seconds": round(best["baseline"], 4),
        "auditft_rows_per_s": round(throughput["auditft"], 1), "baseline_rows_per_s": round(throughput["baseline"], 1),
        "all_seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "prediction_agreement": agree, "max_probability_difference": max_diff,
        "naive_two_audits_ratio": round(2 * best["baseline"] / best["auditft"], 2),
        "audits_end_to_end_seconds": round(audits_total, 3),
        "audits_phases_seconds": {k: round(v, 3) for k, v in phases.items()},
    }
    _bench.finish("P2", what="classification audit inference (ModelSession batched pass) vs per-text pipeline loop",
                  metric="throughput_ratio", value=round(ratio, 3), op=">=", target=TARGET, quick=args.quick,
                  machine=machine, figures=figures,
                  command=f".venv/bin/python benchmarks/p2_classification_inference.py --rows {rows} "
                          f"--repeats {repeats} --train-steps {train_steps}")


if __name__ == "__main__":
    main()
