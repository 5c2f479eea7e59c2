#!/usr/bin/env python3
"""P5: peak resident memory of ``qlora`` against ``lora`` on SmolLM2-135M-Instruct, each tuning
in its own fresh process (``ru_maxrss``: loading, training and saving included).

Both sides run the ``factqa-lora`` suite's tuning (LoRA r 8 / alpha 16 / all-linear, batch 8 x
64 tokens, eval batch 32, validation loss at the end) with ``max_steps`` capped, through the
tuner's ``tune`` as ``auditft run`` calls it; only ``tuner.kind`` differs. Each child also
records its memory at phase boundaries (peak so far and current RSS): imports, ``load_base``
(+ quantisation for qlora), ``get_peft_model``, tokenisation, the training steps, the final
evaluation (``Trainer.evaluate``) and saving.

``--what-if`` runs extra qlora children with a change applied by monkeypatching inside the
child (nothing under auditft/ is edited), to measure a recommended core change:
``gc`` = gradient checkpointing on (``prepare_model_for_kbit_training(...,
use_gradient_checkpointing=True)``), ``eval8`` = eval batch 8 instead of 32; ``gc+eval8`` both.
A ``--what-if`` run writes ``results/p5-whatif.json`` and leaves ``p5.json`` alone.

    .venv/bin/python benchmarks/p5_qlora_memory.py [--quick] [--steps 6] [--what-if gc,eval8]
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

SUITE = "suites/factqa-lora.yaml"
TARGET = 0.6


class Phases:
    """Memory at phase boundaries: the peak so far (``VmHWM``, which is what ``ru_maxrss``
    reports; never reset, so ``ru_maxrss`` stays valid) and the RSS at the end of each phase.
    A phase whose ``peak_so_far_mb`` is above the previous row's set a new peak."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def mark(self, name: str, started: float) -> None:
        self.rows.append({"phase": name, "peak_so_far_mb": _bench.vm_hwm_mb(), "rss_after_mb": _bench.vm_rss_mb(),
                          "seconds": round(time.perf_counter() - started, 2)})

    def wrap(self, name: str, func):
        def wrapped(*a, **kw):
            started = time.perf_counter()
            try:
                return func(*a, **kw)
            finally:
                self.mark(name, started)
        return wrapped


def child(kind: str, suite_path: str, out: str, what_if: str) -> dict:
    changes = set(filter(None, what_if.split("+")))
    unknown = changes - {"gc", "eval8"}
    if unknown:
        raise SystemExit(f"unknown --what-if change(s): {', '.join(sorted(unknown))} (known: gc, eval8)")
    phases = Phases()
    started = time.perf_counter()
    _bench.quiet()
    import bitsandbytes  # noqa: F401  (both sides import the same libraries)
    import datasets  # noqa: F401
    import peft
    import torch  # noqa: F401
    from transformers import set_seed

    _bench.silence_libraries()
    from auditft import training
    from auditft.jobs import TuneJob
    from auditft.plugins import make_plugin_manager
    from auditft.run import prepare

    pm = make_plugin_manager(entry_points=False, env={})
    p = prepare(Path(suite_path), pm)
    phases.mark("imports + prepare", started)
    tuner = pm.tuners.get(kind).factory(p.tuner_options)
    if "gc" in changes:  # the recommended qlora change, applied here by patching
        original = peft.prepare_model_for_kbit_training

        def with_checkpointing(model, use_gradient_checkpointing=True, **kw):
            return original(model, use_gradient_checkpointing=True, **kw)

        peft.prepare_model_for_kbit_training = with_checkpointing
    tuner.load_base = phases.wrap("load_base" + (" + quantise" if kind == "qlora" else ""), tuner.load_base)
    peft.get_peft_model = phases.wrap("get_peft_model", peft.get_peft_model)  # tune() imports it at call time
    training.task_datasets = phases.wrap("tokenise", training.task_datasets)
    import transformers

    train_started = [0.0]
    original_train = training.train

    def train(*a, **kw):
        train_started[0] = time.perf_counter()
        before = len(phases.rows)
        try:
            return original_train(*a, **kw)
        finally:
            if len(phases.rows) == before:  # no validation split: no evaluation marked the steps
                phases.mark("training steps", train_started[0])

    original_evaluate = transformers.Trainer.evaluate

    def evaluate(self, *a, **kw):  # the peak of the steps is known when the evaluation starts
        phases.mark("training steps", train_started[0])
        return phases.wrap("final evaluation", original_evaluate)(self, *a, **kw)

    training.train = train
    transformers.Trainer.evaluate = evaluate
    job_training = p.suite.tuner.training
    if "eval8" in changes:
        job_training = job_training.model_copy(update={"eval_batch_size": 8})
    adapter_dir = Path(out) / "adapter"
    adapter_dir.mkdir(parents=True)
    set_seed(p.suite.seed)
    begun = time.perf_counter()
    result = tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=p.data, training=job_training,
                                options=p.tuner_options, seed=p.suite.seed, adapter_dir=adapter_dir,
                                work_dir=Path(out) / "work"))
    phases.mark("save adapter (end of tune)", begun)
    phases.rows[-1]["seconds"] = round(phases.rows[-1]["seconds"] - sum(r["seconds"] for r in phases.rows[1:-1]), 2)
    return {"kind": kind, "what_if": what_if or None, "peak_rss_mb": _bench.peak_rss_mb(),
            "phases": phases.rows,
            "steps": result.steps, "train_seconds": result.seconds,
            "facts": {k: v for k, v in result.facts.items()
                      if k in ("memory_footprint_bytes", "fp32_footprint_bytes", "quantized_linear_layers",
                               "footprint_ratio")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 training steps")
    parser.add_argument("--steps", type=int, default=None, help="max_steps of each tuning (default 6; quick 2)")
    parser.add_argument("--what-if", default="", help="comma list of qlora variants to measure too: gc, eval8, gc+eval8")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "SUITE", "OUT", "WHATIF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, suite, out, what_if = args.child
        print(json.dumps(child(kind, suite, out, "" if what_if == "-" else what_if)))
        return
    _bench.quiet()
    steps = args.steps or (2 if args.quick else 6)
    machine = _bench.Machine()
    runs: dict[str, dict] = {}
    plan = [("lora", "-"), ("qlora", "-")] + [("qlora", w) for w in args.what_if.split(",") if w]
    with tempfile.TemporaryDirectory() as tmp:
        suites = {kind: _bench.derived_suite(SUITE, Path(tmp), name=f"bench-p5-{kind}", tuner={"kind": kind},
                                             training={"max_steps": steps}, audits=[{"kind": "accuracy"}])
                  for kind in ("lora", "qlora")}
        for kind, what_if in plan:
            suite = suites[kind]
            label = kind if what_if == "-" else f"{kind}+{what_if}"
            runs[label] = _bench.run_child(__file__, "--child", kind, str(suite), str(Path(tmp) / label), what_if)
            print(f"  {label}: peak RSS {runs[label]['peak_rss_mb']:,.0f} MB", file=sys.stderr)
            for row in runs[label]["phases"]:
                print(f"    {row['phase']:<32} peak so far {row['peak_so_far_mb']:>7,.0f} MB   after {row['rss_after_mb']:>7,.0f} MB"
                      f"   {row['seconds']:>6.1f} s", file=sys.stderr)
    ratio = runs["qlora"]["peak_rss_mb"] / runs["lora"]["peak_rss_mb"]
    figures = {"steps": steps, "lora_peak_rss_mb": runs["lora"]["peak_rss_mb"],
               "qlora_peak_rss_mb": runs["qlora"]["peak_rss_mb"], "runs": runs}
    for label, run in runs.items():
        if "+" in label:
            figures[f"ratio_{label}"] = round(run["peak_rss_mb"] / runs["lora"]["peak_rss_mb"], 4)
    _bench.finish("P5", what="peak RSS of qlora / lora tuning on SmolLM2-135M (separate processes)",
                  metric="ratio", value=round(ratio, 4), op="<=", target=TARGET, quick=args.quick, machine=machine,
                  figures=figures,
                  command=f".venv/bin/python benchmarks/p5_qlora_memory.py --steps {steps}"
                          + (f" --what-if {args.what_if}" if args.what_if else ""),
                  variant="whatif" if args.what_if else "")


if __name__ == "__main__":
    main()
