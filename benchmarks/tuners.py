#!/usr/bin/env python3
"""Benchmark every tuner kind side by side: trainable parameters, adapter size on disk,
seconds per optimisation step and peak resident memory.

Each tuner runs in its own child process (peak RSS is per process), on SmolLM2-135M for the
generation tuners and on MiniLM for ``distill`` (classification only), with the same data,
batch size, sequence length and number of steps. Figures are printed as a Markdown table
and written to ``benchmarks/results/tuners.json``.

    .venv/bin/python benchmarks/tuners.py [--steps 12] [--kinds lora,qlora,...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATION = ["prompt", "lora", "qlora", "adapter", "prefix", "ptuning", "ia3", "freeze", "full"]
CLASSIFICATION = ["distill", "lora"]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import yaml
from auditft.jobs import TuneJob
from auditft.plugins import make_plugin_manager
from auditft.run import prepare
from auditft.manifest import tree_size as adapter_size

suite_path, out = Path(sys.argv[1]), Path(sys.argv[2])
pm = make_plugin_manager(entry_points=False, env={})
p = prepare(suite_path, pm)
tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
adapter = out / "adapter"; adapter.mkdir(parents=True)
started = time.perf_counter()
result = tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=p.data,
                            training=p.suite.tuner.training, options=p.tuner_options, seed=p.suite.seed,
                            adapter_dir=adapter, work_dir=out / "work"))
print(json.dumps({"trainable": result.trainable_parameters, "total": result.total_parameters,
                  "steps": result.steps, "train_seconds": result.seconds,
                  "seconds_per_step": result.facts.get("seconds_per_step"),
                  "adapter_bytes": adapter_size(adapter), "wall_seconds": round(time.perf_counter() - started, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "facts": {k: v for k, v in result.facts.items() if k in
                            ("quantized_linear_layers", "memory_footprint_bytes", "compression_ratio",
                             "speed_up", "retained_accuracy")}}))
"""


def suite_for(kind: str, task: str, steps: int) -> dict:
    training = {"max_steps": steps, "batch_size": 8, "max_length": 64, "learning_rate": 1e-3,
                "logging_steps": 1, "checkpoint_steps": 0, "eval_batch_size": 32}
    if task == "generation":
        return {"name": f"bench-{kind}", "task": "generation", "model": {"base": "builtin:smollm2-135m"},
                "data": {"train": str(ROOT / "suites/data/factqa/train.jsonl"),
                         "test": str(ROOT / "suites/data/factqa/test.jsonl"), "validation_fraction": 0.0, "seed": 5},
                "tuner": {"kind": kind, "options": {}, "training": training},
                "audits": [{"kind": "accuracy"}]}
    return {"name": f"bench-{kind}-cls", "task": "classification", "model": {"base": "builtin:minilm-l6"},
            "data": {"train": str(ROOT / "suites/data/triage/train.jsonl"),
                     "test": str(ROOT / "suites/data/triage/test.jsonl"), "labels": ["routine", "urgent"],
                     "validation_fraction": 0.1, "seed": 13},
            "tuner": {"kind": kind, "options": {}, "training": {**training, "batch_size": 16}},
            "audits": [{"kind": "accuracy"}]}


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--kinds", default=",".join(GENERATION))
    parser.add_argument("--classification-kinds", default=",".join(CLASSIFICATION))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = parser.parse_args()
    plan = [(k, "generation") for k in args.kinds.split(",") if k] + \
           [(k, "classification") for k in args.classification_kinds.split(",") if k]
    env = {**os.environ, "AUDITFT_PROGRESS": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, task in plan:
            work = Path(tmp) / f"{kind}-{task}"
            work.mkdir()
            suite = work / "suite.yaml"
            suite.write_text(yaml.safe_dump(suite_for(kind, task, args.steps)), encoding="utf-8")
            started = time.perf_counter()
            child = subprocess.run([sys.executable, "-c", CHILD, str(suite), str(work / "out")],
                                   capture_output=True, text=True, env=env)
            if child.returncode != 0:
                rows.append({"kind": kind, "task": task, "error": child.stderr.strip().splitlines()[-1][:200]})
            else:
                rows.append({"kind": kind, "task": task, **json.loads(child.stdout.strip().splitlines()[-1])})
            print(f"{kind} ({task}): {time.perf_counter() - started:.0f} s", file=sys.stderr)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "tuners.json").write_text(json.dumps({"steps": args.steps, "threads": args.threads, "rows": rows},
                                                indent=2) + "\n", encoding="utf-8")
    print(f"| tuner | model | trainable params | adapter on disk | s/step | peak RSS |\n|---|---|---:|---:|---:|---:|")
    for r in rows:
        model = "SmolLM2-135M" if r["task"] == "generation" else "MiniLM-L6"
        if "error" in r:
            print(f"| {r['kind']} | {model} | error: {r['error']} | | | |")
            continue
        sps = f"{r['seconds_per_step']:.2f}" if r.get("steps") else "–"
        print(f"| {r['kind']} | {model} | {r['trainable']:,} | {r['adapter_bytes'] / 1e6:.2f} MB | {sps} | "
              f"{r['peak_rss_mb']:,.0f} MB |")


if __name__ == "__main__":
    main()
