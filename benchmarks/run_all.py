#!/usr/bin/env python3
"""Run the side-by-side benchmarks P1-P7 and the scaling benchmark P9 in sequence (``make bench``) and print their summary
lines. Each writes ``benchmarks/results/<id>.json`` (``<id>-quick.json`` with ``--quick``).
Timings are never asserted: the exit code is 0 unless a benchmark itself crashed.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only P1,P5]

About 11 minutes on 2 quiet CPU cores (AMD EPYC, 2026-12-07) for P1-P7, and P9 adds about 20 more
(its 100k-row data audit and 100k-row inference, 13 minutes of it; `--only P1,P2,...` leaves it out);
``--quick`` (tiny step and row counts) checks that
every script works in a few minutes and gives no meaningful figure.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: P1 before P6 (P6 reads P1's seconds per step for its Trainer comparison)
BENCHMARKS = [
    ("P7", "p7_cli_startup.py"),
    ("P1", "p1_training.py"),
    ("P6", "p6_flops.py"),
    ("P2", "p2_classification_inference.py"),
    ("P3", "p3_generation.py"),
    ("P4", "p4_kfold.py"),
    ("P5", "p5_qlora_memory.py"),
    ("P9", "p9_scaling.py"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny step / row counts: check the scripts only")
    parser.add_argument("--only", default="", help="comma list of ids, e.g. P1,P5")
    args = parser.parse_args()
    wanted = {x.strip().upper() for x in args.only.split(",") if x.strip()}
    summaries, failed = [], []
    started = time.perf_counter()
    for bench_id, script in BENCHMARKS:
        if wanted and bench_id not in wanted:
            continue
        print(f"== {bench_id}: {script}{' --quick' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        child = subprocess.run([sys.executable, str(HERE / script), *(["--quick"] if args.quick else [])],
                               stdout=subprocess.PIPE, text=True)
        lines = [line for line in child.stdout.splitlines() if line.startswith(bench_id + " ")]
        print(child.stdout, end="", flush=True)
        if child.returncode != 0:
            failed.append(bench_id)
            summaries.append(f"{bench_id} crashed (exit {child.returncode})")
        else:
            summaries.extend(lines)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n== summary ({time.perf_counter() - started:.0f} s in all)")
    for line in summaries:
        print(line)
    print("\n" + table(args.quick, wanted))
    return 1 if failed else 0


def table(quick: bool, wanted: set[str]) -> str:
    """The results as the Markdown rows of benchmarks/RESULTS.md (from the JSON files)."""
    rows = ["| id | what | figure | target | status | machine (others' CPU share) | command |",
            "|---|---|---:|---|---|---|---|"]
    for bench_id, _ in sorted(BENCHMARKS):
        if wanted and bench_id not in wanted:
            continue
        path = HERE / "results" / f"{bench_id.lower()}{'-quick' if quick else ''}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text(encoding="utf-8"))
        target = f"{r['op']} {r['target']:g}" if r.get("target") is not None else "–"
        rows.append(f"| {r['id']} | {r['what']} | {r['metric']} {r['value']:.3g} | {target} | {r['status']} | "
                    f"{r['machine']['machine']} ({r['machine']['other_cpu_share']:.0%}) | `{r['command']}` |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
