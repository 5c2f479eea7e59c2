#!/usr/bin/env python3
"""P9: cost as work grows (issue 19): the ``data`` audit, classification inference and the
``fairness`` audit at growing row counts; seconds, rows/s and peak memory per stage and size,
and the scaling exponent between sizes (``log(t2/t1) / log(n2/n1)``; 1 = linear).

Rows: ``suites/data/make_triage.py``'s own generator (``make_split``: the same columns, text,
label, sex, age_band, ethnicity, and the same quotas and planted noise as the demo data), seeded,
N training rows and N test rows per size, written once to a temporary folder (not timed).
Every (stage, size) runs in a fresh child process, so its memory figures are its own:

* ``data``: the ``data`` audit through ``run_audit`` on a base-only ``ModelSession``, as
  ``auditft run``'s data stage does (default options: TF-IDF label-issue model, MinHash near
  duplicates, groups, personal data, token lengths; exports to a temporary folder), on N
  training rows and a test file of N/4 rows. Loading and validating the rows (``prepare``) is
  timed apart (``load_seconds``), not in the stage.
* ``inference``: ``ModelSession.adapter_proba("test")`` on N test rows, the batched,
  length-bucketed pass that ``accuracy``, ``fairness`` and ``calibration`` read, with the
  demo's ``builtin:minilm-l6`` and a LoRA adapter trained for a few steps in a setup child
  (not timed; as P2 does). Adapter load and one warm-up batch come before the clock starts.
* ``fairness``: the ``fairness`` audit through ``run_audit`` on N test rows (the demo's options:
  ``min_group_size: 30``, 200 bootstrap resamples). Predictions come from
  ``auditft.conformance.fakes.FakeModelSession``, computed before the clock starts, so the
  figure is the audit's own cost (groups, fairlearn frames, paired bootstrap, Fisher tests).

Memory: ``peak_rss_mib`` is the child's ``ru_maxrss`` (setup included: interpreter, libraries,
model, the loaded rows); ``stage_peak_mib`` is ``VmHWM`` reset just before the stage, so the peak
while the stage ran; ``rss_before_mib`` is the resident set when the stage started.
Threads: ``OMP_NUM_THREADS`` (default 2, as every benchmark here); on a shared machine run
the data stage once more with ``OMP_NUM_THREADS=1`` (RESULTS.md: scikit-learn's OpenMP loss
waits on a descheduled second thread). "Near linear" means exponent <= 1.15 between
consecutive sizes; the summary's figure is the worst exponent over every stage.

    .venv/bin/python benchmarks/p9_scaling.py [--quick] [--sizes 1000,10000,100000] [--deadline 17:07]
        [--stages data,inference,fairness] [--inference-sizes 1000,10000] [--profile fairness:100000]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

SUITE = "suites/triage-demo.yaml"
TARGET = 1.15
STAGES = ("data", "inference", "fairness")
SEED = 1913  # of the generated rows (the demo data use 13)
#: every finished child is also written here, so a run cut short keeps what it measured
PARTIAL = Path(tempfile.gettempdir()) / "h" / "scaling-partial.json"
SMALL_TRAIN = 240  # train rows of the inference / fairness suites (only the test split is scored)


# -- the rows -------------------------------------------------------------------------------


def _generator() -> Any:
    import importlib.util

    path = _bench.ROOT / "suites" / "data" / "make_triage.py"
    spec = importlib.util.spec_from_file_location("make_triage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def make_data(sizes: list[int], tmp: Path) -> dict[int, dict[str, str]]:
    """Per size: train (N), test (N), a quarter test (N/4, the data audit's test file) and a small
    train file (the inference / fairness suites' train split), and the suites reading them."""
    import random

    gen = _generator()
    suites: dict[int, dict[str, str]] = {}
    for n in sizes:
        rng, seen = random.Random(SEED + n), set[str]()  # one `seen`: no text in both train and test
        train, _ = gen.make_split(rng, n, 1, seen)
        test, _ = gen.make_split(rng, n, n + 1, seen)
        files = {"train": tmp / f"train-{n}.jsonl", "test": tmp / f"test-{n}.jsonl",
                 "test_quarter": tmp / f"test-quarter-{n}.jsonl", "train_small": tmp / f"train-small-{n}.jsonl"}
        _write(files["train"], train)
        _write(files["test"], test)
        _write(files["test_quarter"], test[:max(n // 4, 1)])
        _write(files["train_small"], train[:SMALL_TRAIN])
        data_suite = _bench.derived_suite(
            SUITE, tmp, name=f"p9-data-{n}", audits=[{"kind": "data"}],
            data={"train": str(files["train"]), "test": str(files["test_quarter"])})
        eval_suite = _bench.derived_suite(
            SUITE, tmp, name=f"p9-eval-{n}", audits=[{"kind": "fairness", "options": {"min_group_size": 30}}],
            data={"train": str(files["train_small"]), "test": str(files["test"])})
        suites[n] = {"data": str(data_suite), "eval": str(eval_suite)}
    return suites


# -- children -----------------------------------------------------------------------------------


def _libraries() -> Any:
    _bench.quiet()
    import torch

    _bench.silence_libraries()
    torch.set_num_threads(_bench.THREADS)
    from auditft.plugins import make_plugin_manager

    return make_plugin_manager(entry_points=False, env={})


def child_setup(tmp: Path, steps: int) -> dict[str, Any]:
    """Train the setup adapter (a few steps, not timed in any stage) into ``tmp/adapter``."""
    from transformers import set_seed

    pm = _libraries()
    from auditft.jobs import TuneJob
    from auditft.plan import prepare

    suite_path = _bench.derived_suite(SUITE, tmp, name="p9-setup", audits=[{"kind": "accuracy"}],
                                      training={"max_steps": steps, "checkpoint_steps": 0})
    p = prepare(suite_path, pm)
    tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
    adapter_dir = tmp / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    set_seed(p.suite.seed)
    started = time.perf_counter()
    tuner.tune(TuneJob(suite=p.suite, task=p.suite.task, base=p.base, data=p.data, training=p.suite.tuner.training,
                       options=p.tuner_options, seed=p.suite.seed, adapter_dir=adapter_dir, work_dir=tmp / "work"))
    return {"setup_seconds": round(time.perf_counter() - started, 2), "steps": steps}


class Precomputed:
    """The two predictions the classification fairness audit reads, computed beforehand."""

    def __init__(self, adapter: Any, base: Any) -> None:
        self._adapter, self._base = adapter, base

    def adapter_proba(self, split: str) -> Any:
        assert split == "test"
        return self._adapter

    def base_probe_proba(self, split: str) -> Any:
        assert split == "test"
        return self._base


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def child_stage(stage: str, n: int, tmp: Path, suites: dict[str, Any], profile: Path | None) -> dict[str, Any]:
    pm = _libraries()
    repeats = int(suites.get("repeats", 1))
    from auditft.inference import ModelSession
    from auditft.isolation import run_audit
    from auditft.jobs import AuditJob
    from auditft.plan import prepare

    started = time.perf_counter()
    p = prepare(Path(suites["data" if stage == "data" else "eval"]), pm)
    load_s = time.perf_counter() - started
    work = tmp / f"work-{stage}-{n}"
    work.mkdir(exist_ok=True)
    extra: dict[str, Any] = {}
    if stage == "data":
        session = ModelSession.for_suite(p.suite, p.base, p.data, tuner=None, adapter_dir=None)

        def job() -> Any:
            return run_audit(pm.audits.get("data"), AuditJob(
                suite=p.suite, task=p.suite.task, data=p.data, options=p.audit_options["data"], seed=p.suite.seed,
                models=session, work_dir=work, extra={"export_dir": work / "data-audit"}))
    elif stage == "inference":
        tuner = pm.tuners.get(p.suite.tuner.kind).factory(p.tuner_options)
        session = ModelSession.for_suite(p.suite, p.base, p.data, tuner=tuner, adapter_dir=tmp / "adapter")
        mark = time.perf_counter()
        session.adapter_model()
        extra["adapter_load_seconds"] = round(time.perf_counter() - mark, 3)
        session._adapter_scores([ex.text for ex in p.data.test[:p.suite.tuner.training.eval_batch_size]], "warm-up")

        def job() -> Any:
            return session.adapter_proba("test")
    else:
        from auditft.conformance.fakes import FakeModelSession

        fake = FakeModelSession(p.data, p.suite.seed)
        models = Precomputed(fake.adapter_proba("test"), fake.base_probe_proba("test"))

        def job() -> Any:
            return run_audit(pm.audits.get("fairness"), AuditJob(
                suite=p.suite, task=p.suite.task, data=p.data, options=p.audit_options["fairness"],
                seed=p.suite.seed, models=models, work_dir=work))  # type: ignore[arg-type]
    rows = len(p.data.train) + len(p.data.validation) if stage == "data" else len(p.data.test)
    rss_before = _bench.vm_rss_mb()
    hwm_reset = _bench.reset_hwm()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    walls: list[float] = []
    cpus: list[float] = []
    outs: list[Any] = []
    for _ in range(1 if profiler is not None else repeats):
        if stage == "inference":
            session._cache.pop("adapter_proba:test", None)  # recompute: the pass is the timed thing
        cpu, mark = _cpu_seconds(), time.perf_counter()
        outs.append(job())
        walls.append(time.perf_counter() - mark)
        cpus.append(_cpu_seconds() - cpu)
    best = min(range(len(walls)), key=walls.__getitem__)
    out = outs[best]
    seconds = walls[best]
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        assert profile is not None
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
        profile.write_text(f"# P9 profile: {stage} at {n} rows, {seconds:.2f} s under cProfile\n"
                           + buf.getvalue(), encoding="utf-8")
    stage_peak = _bench.vm_hwm_mb() if hwm_reset else None
    if stage in ("data", "fairness"):
        if out.error:
            raise RuntimeError(out.error)
        if stage == "data":
            extra["check_seconds"] = out.evidence.get("seconds", {})
            extra["duplicates"] = {k: out.evidence["duplicates"][k] for k in ("train_pairs", "leaked_test_rows")}
        extra["metrics"] = {k: round(m.value, 4) for k, m in out.metrics.items() if m.value is not None}
    else:
        extra["shape"] = list(out.shape)
        extra["urgent_share"] = round(float((out.argmax(1) == 1).mean()), 4)
    return {"stage": stage, "n": n, "rows": rows, "seconds": round(seconds, 4), "cpu_seconds": round(cpus[best], 3),
            "all_seconds": [round(x, 4) for x in walls], "load_seconds": round(load_s, 3),
            "rss_before_mib": rss_before, "stage_peak_mib": stage_peak, "peak_rss_mib": _bench.peak_rss_mb(),
            "profiled": profile is not None, **extra}


# -- parent ---------------------------------------------------------------------------------------


def exponent(a: dict[str, Any], b: dict[str, Any], key: str = "seconds") -> float | None:
    """``log(t2/t1) / log(n2/n1)`` of two runs of a stage (1 = linear, 2 = quadratic)."""
    if a[key] <= 0 or b[key] <= 0 or a["rows"] == b["rows"]:
        return None
    return round(math.log(b[key] / a[key]) / math.log(b["rows"] / a["rows"]), 3)


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| stage | rows | seconds | rows/s | exponent | CPU s | CPU exponent | peak RSS MiB (child) "
             "| stage peak MiB | RSS before MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for stage, runs in results.items():
        for i, r in enumerate(runs):
            exp = exponent(runs[i - 1], r) if i else None
            cpu_exp = exponent(runs[i - 1], r, "cpu_seconds") if i else None
            peak = r["stage_peak_mib"]
            lines.append(f"| {stage} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows'] / r['seconds']:,.0f} | "
                         f"{'–' if exp is None else f'{exp:.2f}'} | {r['cpu_seconds']:.2f} | "
                         f"{'–' if cpu_exp is None else f'{cpu_exp:.2f}'} | {r['peak_rss_mib']:,.0f} | "
                         f"{'–' if peak is None else f'{peak:,.0f}'} | {r['rss_before_mib']:,.0f} |")
    return "\n".join(lines)


def _deadline(text: str) -> float:
    """Today's ``HH:MM`` UTC as a Unix time."""
    import calendar

    hour, minute = (int(x) for x in text.split(":"))
    today = time.gmtime()
    return calendar.timegm((today.tm_year, today.tm_mon, today.tm_mday, hour, minute, 0, 0, 0, 0))


def _ints(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000; 2 setup training steps")
    parser.add_argument("--sizes", default=None, help="comma list of row counts (default 1000,10000,100000)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma list of data,inference,fairness")
    parser.add_argument("--inference-sizes", default=None,
                        help="row counts of the inference stage, if fewer than --sizes (it is the slow one)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per data / fairness child, best counts (default 3, quick 1; the "
                             "first also pays the audit's lazy imports)")
    parser.add_argument("--inference-repeats", type=int, default=1, help="timed passes per inference child")
    parser.add_argument("--train-steps", type=int, default=None, help="setup adapter steps (default 10; quick 2)")
    parser.add_argument("--profile", default="", help="STAGE:N, e.g. fairness:100000: that child runs under "
                        "cProfile (its time is then not comparable) and writes /tmp/h/scaling-profile-STAGE-N.txt")
    parser.add_argument("--deadline", default="", help="HH:MM (UTC): a (stage, size) whose linear extrapolation "
                        "from the stage's previous size would end after it is skipped, and listed as skipped")
    parser.add_argument("--child", nargs=4, metavar=("STAGE", "N", "TMP", "SUITES_JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--setup-child", nargs=2, metavar=("TMP", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_child:
        print(json.dumps(child_setup(Path(args.setup_child[0]), int(args.setup_child[1]))), flush=True)
        return
    if args.child:
        stage, n, tmp, suites = args.child
        profile = Path(suites_profile) if (suites_profile := json.loads(suites).get("profile")) else None
        print(json.dumps(child_stage(stage, int(n), Path(tmp), json.loads(suites), profile)), flush=True)
        return

    sizes = _ints(args.sizes) if args.sizes else ([1000, 10000] if args.quick else [1000, 10000, 100000])
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; known: {list(STAGES)}")
    inference_sizes = _ints(args.inference_sizes) if args.inference_sizes else sizes
    deadline = _deadline(args.deadline) if args.deadline else None
    steps = args.train_steps or (2 if args.quick else 10)
    args.repeats = args.repeats or (1 if args.quick else 3)
    profile_stage, _, profile_n = args.profile.partition(":")
    machine = _bench.Machine()
    results: dict[str, list[dict[str, Any]]] = {}
    skipped: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mark = time.perf_counter()
        suites = make_data(sorted(set(sizes) | (set(inference_sizes) if "inference" in stages else set())), tmp)
        print(f"  generated rows for sizes {sizes} in {time.perf_counter() - mark:.1f} s", file=sys.stderr)
        setup = _bench.run_child(__file__, "--setup-child", str(tmp), str(steps)) if "inference" in stages else None
        for stage in stages:
            results[stage] = []
            for n in (inference_sizes if stage == "inference" else sizes):
                info: dict[str, Any] = {**suites[n],
                                        "repeats": args.inference_repeats if stage == "inference" else args.repeats}
                if stage == profile_stage and str(n) == profile_n:
                    info["profile"] = f"/tmp/h/scaling-profile-{stage}-{n}.txt"
                previous = results[stage][-1] if results[stage] else None
                if deadline is not None and previous is not None:
                    expected = previous["child_wall_seconds"] * n / previous["n"]
                    if time.time() + expected > deadline:
                        skipped.append({"stage": stage, "n": n, "expected_seconds": round(expected),
                                        "why": f"a linear extrapolation ({expected:.0f} s) ends after --deadline "
                                               f"{args.deadline} UTC"})
                        print(f"  {stage} n={n}: skipped ({skipped[-1]['why']})", file=sys.stderr, flush=True)
                        continue
                r = _bench.run_child(__file__, "--child", stage, str(n), str(tmp), json.dumps(info), timeout=3600)
                results[stage].append(r)
                PARTIAL.parent.mkdir(parents=True, exist_ok=True)
                PARTIAL.write_text(json.dumps({"runs": results, "skipped": skipped}, indent=1), encoding="utf-8")
                print(f"  {stage} n={n}: {r['seconds']:.2f} s ({r['rows'] / r['seconds']:,.0f} rows/s), "
                      f"peak RSS {r['peak_rss_mib']:,.0f} MiB, stage peak {r['stage_peak_mib']} MiB"
                      f"{' (cProfile)' if r['profiled'] else ''}", file=sys.stderr, flush=True)
    exponents = {stage: [exponent(a, b) for a, b in zip(runs, runs[1:])] for stage, runs in results.items()}
    cpu_exponents = {stage: [exponent(a, b, "cpu_seconds") for a, b in zip(runs, runs[1:])]
                     for stage, runs in results.items()}
    checks = {}  # the data audit's own per-check timings (evidence["seconds"]) and their exponents
    data_runs = results.get("data", [])
    for name in (data_runs[0].get("check_seconds", {}) if data_runs else {}):
        secs = [r["check_seconds"][name] for r in data_runs]
        checks[name] = {"seconds": secs, "exponents": [
            round(math.log(b / a) / math.log(rb["rows"] / ra["rows"]), 3) if a > 0 and b > 0 else None
            for a, b, ra, rb in zip(secs, secs[1:], data_runs, data_runs[1:])]}
        print(f"  data check {name}: seconds {secs}, exponents {checks[name]['exponents']}", file=sys.stderr)
    measured = [(e, stage) for stage, es in exponents.items() for e in es if e is not None]
    worst, worst_stage = max(measured) if measured else (None, None)
    print(table(results))
    figures = {"sizes": sizes, "inference_sizes": inference_sizes if "inference" in stages else None,
               "stages": stages, "near_linear_exponent": TARGET, "exponents": exponents, "cpu_exponents": cpu_exponents,
               "data_checks": checks,
               "worst_stage": worst_stage, "setup": setup,
               "generator": f"suites/data/make_triage.py make_split, seed {SEED}+N",
               "runs": results, "skipped": skipped, "table_markdown": table(results),
               "profiled": args.profile or None}
    size_arg = f" --sizes {','.join(map(str, sizes))}"
    inf_arg = f" --inference-sizes {','.join(map(str, inference_sizes))}" if inference_sizes != sizes else ""
    _bench.finish("P9", what="scaling: data audit, classification inference, fairness audit at growing row counts",
                  metric="worst_exponent", value=worst, op="<=", target=TARGET, quick=args.quick, machine=machine,
                  figures=figures, command=f".venv/bin/python benchmarks/p9_scaling.py{size_arg} "
                                           f"--stages {','.join(stages)}{inf_arg} --repeats {args.repeats} "
                                           f"--inference-repeats {args.inference_repeats} --train-steps {steps}")


if __name__ == "__main__":
    main()
