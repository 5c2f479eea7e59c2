#!/usr/bin/env python3
"""P1: the training phase of ``auditft run`` (``lora`` on MiniLM, the triage demo suite) against
a plain Hugging Face Trainer + peft script with identical data, model, seed and steps.

auditft side: ``auditft.run.prepare`` + the ``lora`` tuner's ``tune`` through the plugin manager,
as ``auditft/run.py`` runs it (seeded, the suite's training block, checkpoints every
``checkpoint_steps``, validation loss at the end of the epoch, safetensors adapter). Timed: the
``tune`` call (= ``timings.tuning`` of a run). Baseline: the script a user would write by hand
(``AutoModelForSequenceClassification`` + ``LoraConfig`` with the suite's r / alpha / dropout /
modules_to_save, ``datasets.map`` tokenisation, ``Trainer``, ``save_pretrained``) on exactly the
rows auditft trains and validates on. Each measurement is a fresh process (nothing warm carried
over), the two sides alternate, best of ``--repeats`` each. Both sides also report their loss
curves: identical curves show the two did the same work.

    .venv/bin/python benchmarks/p1_training.py [--quick] [--steps 60] [--repeats 2]
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
TARGET = 1.05


def child_auditft(suite_path: str, out: str) -> dict:
    _bench.quiet()
    import datasets  # noqa: F401  (both sides import the heavy libraries before the clock starts)
    import peft  # noqa: F401
    import torch  # noqa: F401
    from transformers import set_seed

    _bench.silence_libraries()
    from auditft.jobs import TuneJob
    from auditft.plugins import make_plugin_manager
    from auditft.run import prepare

    started = time.perf_counter()
    pm = make_plugin_manager(entry_points=False, env={})
    p = prepare(Path(suite_path), pm)
    prepare_s = time.perf_counter() - started
    tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
    adapter_dir, work_dir = Path(out) / "adapter", Path(out) / "work"
    adapter_dir.mkdir(parents=True)
    set_seed(p.suite.seed)  # run.py: _seed_everything(suite.seed) right before tune
    started = time.perf_counter()
    result = tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=p.data,
                                training=p.suite.tuner.training, options=p.tuner_options, seed=p.suite.seed,
                                adapter_dir=adapter_dir, work_dir=work_dir))
    phase = time.perf_counter() - started
    return {"side": "auditft", "phase_seconds": round(phase, 3), "train_seconds": result.seconds,
            "prepare_seconds": round(prepare_s, 3), "steps": result.steps,
            "loss_curve": [list(x) for x in result.loss_curve],
            "eval_loss_curve": result.facts.get("eval_loss_curve"), "peak_rss_mb": _bench.peak_rss_mb()}


def child_baseline(rows_path: str, out: str) -> dict:
    """The plain script: what a user writes without auditft."""
    _bench.quiet()
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    from transformers import set_seed

    _bench.silence_libraries()
    spec = json.loads(Path(rows_path).read_text(encoding="utf-8"))
    set_seed(spec["seed"])
    started = time.perf_counter()
    # ---- the plain HF Trainer + peft script --------------------------------------------
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    labels, opts, tr = spec["labels"], spec["options"], spec["training"]
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForSequenceClassification.from_pretrained(
        spec["model"], num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)})
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=opts["r"], lora_alpha=opts["alpha"],
                                             lora_dropout=opts["dropout"], target_modules=opts.get("target_modules"),
                                             modules_to_save=opts.get("modules_to_save")))

    def tokenise(split: str) -> Dataset:
        ds = Dataset.from_dict({"text": [t for t, _ in spec[split]], "label": [y for _, y in spec[split]]})
        return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=tr["max_length"]),
                      batched=True, remove_columns=["text"])

    train_ds, eval_ds = tokenise("train"), tokenise("validation")
    args = TrainingArguments(
        output_dir=str(Path(out) / "checkpoints"), num_train_epochs=tr["epochs"], max_steps=tr["max_steps"],
        per_device_train_batch_size=tr["batch_size"], per_device_eval_batch_size=tr["eval_batch_size"],
        learning_rate=tr["learning_rate"], warmup_steps=tr["warmup_ratio"], logging_steps=tr["logging_steps"],
        eval_strategy="epoch", save_strategy="steps", save_steps=tr["checkpoint_steps"],
        seed=spec["seed"], data_seed=spec["seed"], report_to="none", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=DataCollatorWithPadding(tokenizer))
    train_started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - train_started
    model.save_pretrained(str(Path(out) / "adapter"))
    # -------------------------------------------------------------------------------------
    phase = time.perf_counter() - started
    history = trainer.state.log_history
    return {"side": "baseline", "phase_seconds": round(phase, 3), "train_seconds": round(train_s, 3),
            "steps": int(trainer.state.global_step),
            "loss_curve": [[int(h["step"]), float(h["loss"])] for h in history if "loss" in h],
            "eval_loss_curve": [[int(h["step"]), float(h["eval_loss"])] for h in history if "eval_loss" in h],
            "peak_rss_mb": _bench.peak_rss_mb()}


def write_rows(suite_path: Path, target: Path) -> dict:
    """The exact train / validation rows auditft uses, for the plain script."""
    from auditft.plugins import make_plugin_manager
    from auditft.run import prepare

    p = prepare(suite_path, make_plugin_manager(entry_points=False, env={}))
    tr = p.suite.tuner.training
    spec = {"model": p.base.path, "labels": list(p.data.labels), "seed": p.suite.seed,
            "options": p.tuner_options.model_dump(mode="json"),
            "training": {**tr.model_dump(mode="json")},
            "train": [[ex.text, int(ex.label)] for ex in p.data.train],
            "validation": [[ex.text, int(ex.label)] for ex in p.data.validation]}
    target.write_text(json.dumps(spec), encoding="utf-8")
    return {"train_rows": len(spec["train"]), "validation_rows": len(spec["validation"]),
            "options": spec["options"], "training": spec["training"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 steps, one repeat: checks the script, not a figure")
    parser.add_argument("--steps", type=int, default=None, help="max_steps of each training (default 60; quick 4)")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per side (default 2; quick 1)")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "INPUT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, source, out = args.child
        print(json.dumps(child_auditft(source, out) if side == "auditft" else child_baseline(source, out)))
        return
    _bench.quiet()
    steps = args.steps or (4 if args.quick else 60)
    repeats = args.repeats or (1 if args.quick else 2)
    machine = _bench.Machine()
    runs: dict[str, list[dict]] = {"auditft": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        # random batches, as the plain script draws them: P1 measures the framework around the
        # Trainer (identical loss curves); the demo's by_length batching shows in P6 and P8
        suite = _bench.derived_suite(SUITE, Path(tmp), name="bench-p1", training={"max_steps": steps, "batching": "random"},
                                     audits=[{"kind": "accuracy"}])
        rows = Path(tmp) / "rows.json"
        setup = write_rows(suite, rows)
        for r in range(repeats):
            for side in (("auditft", "baseline") if r % 2 == 0 else ("baseline", "auditft")):
                out = Path(tmp) / f"{side}-{r}"
                runs[side].append(_bench.run_child(__file__, "--child", side, str(suite if side == "auditft" else rows),
                                                   str(out)))
                print(f"  {side} run {r + 1}: {runs[side][-1]['phase_seconds']:.1f} s", file=sys.stderr)
    best = {side: min(x["phase_seconds"] for x in v) for side, v in runs.items()}
    best_train = {side: min(x["train_seconds"] for x in v) for side, v in runs.items()}
    ratio = best["auditft"] / best["baseline"]
    a, b = runs["auditft"][0], runs["baseline"][0]
    diffs = [abs(x[1] - y[1]) for x, y in zip(a["loss_curve"], b["loss_curve"])]
    figures = {
        "steps": steps, "repeats": repeats, "setup": setup,
        "auditft_phase_seconds": best["auditft"], "baseline_phase_seconds": best["baseline"],
        "auditft_train_seconds": best_train["auditft"], "baseline_train_seconds": best_train["baseline"],
        "train_only_ratio": round(best_train["auditft"] / best_train["baseline"], 4),
        "seconds_per_step": {side: round(best_train[side] / steps, 4) for side in best_train},
        "loss_curves_identical": bool(diffs) and max(diffs) < 1e-6 and len(a["loss_curve"]) == len(b["loss_curve"]),
        "max_loss_difference": max(diffs) if diffs else None,
        "runs": runs,
    }
    _bench.finish("P1", what="training phase of `auditft run` (lora, MiniLM, triage) vs plain HF Trainer + peft",
                  metric="ratio", value=round(ratio, 4), op="<=", target=TARGET, quick=args.quick, machine=machine,
                  figures=figures,
                  command=f".venv/bin/python benchmarks/p1_training.py --steps {steps} --repeats {repeats}")


if __name__ == "__main__":
    main()
