#!/usr/bin/env python3
"""P7: start-up time of ``auditft --help`` and ``auditft plugins`` against ``python -c pass``,
and proof that neither imports torch (nor transformers, peft, numpy, ...).

Each command runs ``--repeats`` times in a fresh process, interleaved with the others; the
figure is the best wall time of each (the least disturbed by other load; the median is kept
too). Target: both under 0.30 s (issue 19; it was 0.5 s in issue 7).

Two bytecode settings are measured. ``cached`` is Python's default (bytecode written on the
first run and read afterwards; put under a temporary ``PYTHONPYCACHEPREFIX`` so the work tree
is not touched): that is the headline figure. ``no-write`` is this machine's environment
(``PYTHONDONTWRITEBYTECODE=1``): the editable ``auditft`` sources have no ``.pyc`` and are
compiled again on every start. ``no-table`` is ``cached`` with the plugin table off
(``AUDITFT_NO_PLUGIN_CACHE=1``): what a first start after an install or an edit costs.

The import proof runs each command once under ``python -X importtime`` and once with an
``atexit`` hook that lists the heavy modules in ``sys.modules`` when the command exits; a
cProfile of a warm ``auditft plugins`` shows where the remaining time goes.

    .venv/bin/python benchmarks/p7_cli_startup.py [--quick] [--repeats 15]
    .venv/bin/python benchmarks/p7_cli_startup.py --breakdown     # start-up stages only
"""
from __future__ import annotations

import argparse
import io
import json
import pstats
import statistics
import tempfile
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

TARGET = 0.30
HEAVY = ("torch", "transformers", "peft", "datasets", "numpy", "scipy", "sklearn", "bitsandbytes", "accelerate",
         "fairlearn", "pandas", "evaluate", "safetensors", "tokenizers", "jinja2")
AUDITFT = str(Path(sys.executable).parent / "auditft")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "auditft --help": [AUDITFT, "--help"],
    "auditft plugins": [AUDITFT, "plugins"],
}

PROBE = r"""
import atexit, json, sys
HEAVY = {heavy!r}
def report():
    found = sorted({{name.split(".")[0] for name in sys.modules}} & set(HEAVY))
    sys.stderr.write("\nHEAVY-MODULES " + json.dumps({{"heavy": found, "modules": len(sys.modules)}}) + "\n")
atexit.register(report)
sys.argv = ["auditft", *{argv!r}]
from auditft.cli import main
main()
"""


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - started


def measure(env: dict, repeats: int) -> dict:
    for cmd in COMMANDS.values():  # warm-up: page cache, and the bytecode cache where it is written
        timed(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(timed(cmd, env))
    summary = {name: {"best_s": round(min(v), 4), "median_s": round(statistics.median(v), 4),
                      "all_s": [round(x, 4) for x in v]} for name, v in times.items()}
    python_best = summary["python -c pass"]["best_s"]
    for name in ("auditft --help", "auditft plugins"):
        summary[name]["over_python_s"] = round(summary[name]["best_s"] - python_best, 4)
        summary[name]["ratio_to_python"] = round(summary[name]["best_s"] / python_best, 2)
    summary["worst_auditft_best_s"] = max(summary["auditft --help"]["best_s"], summary["auditft plugins"]["best_s"])
    return summary


PROFILE = r"""
import cProfile, sys
sys.argv = ["auditft", "plugins"]
profile = cProfile.Profile()
profile.enable()
try:
    from auditft.cli import main
    main()
except SystemExit:
    pass
profile.disable()
profile.dump_stats({out!r})
"""


def cprofile_plugins(env: dict, out: Path) -> dict:
    """cProfile of one warm ``auditft plugins`` (imports included): top lines by cumulative
    and by own time, auditft / pydantic / metadata functions only where it helps."""
    subprocess.run([sys.executable, "-c", PROFILE.format(out=str(out))], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    stats = pstats.Stats(str(out), stream=io.StringIO())

    def top(key: str, n: int, keep: tuple[str, ...] = ()) -> list[list]:
        rows = []
        for (filename, line, func), (cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
            where = f"{filename.replace(str(_bench.ROOT) + '/', '')}:{line}({func})"
            if keep and not any(k in where for k in keep):
                continue
            rows.append([where.split("site-packages/")[-1], nc, round(tt * 1000, 1), round(ct * 1000, 1)])
        rows.sort(key=lambda r: -(r[3] if key == "cumulative" else r[2]))
        return rows[:n]

    return {"columns": ["function", "calls", "own_ms", "cumulative_ms"],
            "total_ms": round(stats.total_tt * 1000, 1),  # type: ignore[attr-defined]
            "top_cumulative_auditft": top("cumulative", 15, ("auditft", "pluggy", "importlib/metadata", "entry_points")),
            "top_own": top("own", 15),
            "pydantic_model_build": top("cumulative", 3, ("_model_construction.py",))}


STAGES = r"""
import json, time
t = [("start", time.perf_counter())]
def mark(name): t.append((name, time.perf_counter()))
import click; mark("import click")
import pydantic; mark("import pydantic")
import pluggy; mark("import pluggy")
import importlib.metadata; mark("import importlib.metadata")
import auditft.registry; mark("import auditft.registry (pydantic BaseModel)")
import auditft.plugins as plugins; mark("import auditft.plugins")
import auditft.cli; mark("import auditft.cli")
for name in plugins.DEFAULT_PLUGINS:
    __import__(name)
mark("import the built-in plugin modules")
importlib.metadata.entry_points(group="auditft"); mark("entry_points(group='auditft')")
pm = plugins.make_plugin_manager(); pm.tuners, pm.audits; mark("make_plugin_manager() + registries")
print(json.dumps([[n, (v - p) * 1000] for (n, v), (_, p) in zip(t[1:], t[:-1])]))
"""


def stage_breakdown(env: dict, runs: int = 5) -> dict:
    """Wall milliseconds of each start-up stage of ``auditft plugins`` (warm bytecode), best of
    ``runs`` fresh processes per stage; the interpreter's own start is ``python -c pass``."""
    best: dict[str, float] = {}
    for _ in range(runs):
        child = subprocess.run([sys.executable, "-c", STAGES], capture_output=True, text=True, env=env, check=True)
        for name, ms in json.loads(child.stdout.strip().splitlines()[-1]):
            best[name] = min(best.get(name, float("inf")), ms)
    return {name: round(ms, 1) for name, ms in best.items()}


def import_profile(argv: list[str]) -> dict:
    """``python -X importtime`` of the real console script: heavy packages imported, the
    slowest imports by cumulative and by self time."""
    child = subprocess.run([sys.executable, "-X", "importtime", AUDITFT, *argv], capture_output=True, text=True,
                           env=_bench.CHILD_ENV)
    rows = []
    for line in child.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, cumulative, name = line[len("import time:"):].split("|")
            rows.append((int(own), int(cumulative), name.rstrip()))
    top_level = {name.strip().split(".")[0] for _, _, name in rows}
    by_cumulative = sorted(rows, key=lambda r: -r[1])[:12]
    by_self = sorted(rows, key=lambda r: -r[0])[:12]
    return {
        "modules_imported": len(rows),
        "heavy_imported": sorted(top_level & set(HEAVY)),
        "torch_imported": "torch" in top_level,
        "total_import_ms": round(sum(r[0] for r in rows) / 1000, 1),
        "top_cumulative_ms": [[name.strip(), round(c / 1000, 1)] for _, c, name in by_cumulative],
        "top_self_ms": [[name.strip(), round(s / 1000, 1)] for s, _, name in by_self],
    }


def sys_modules_probe(argv: list[str]) -> dict:
    code = PROBE.format(heavy=HEAVY, argv=argv)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_bench.CHILD_ENV)
    for line in child.stderr.splitlines():
        if line.startswith("HEAVY-MODULES "):
            return {**json.loads(line.split(" ", 1)[1]), "exit_code": child.returncode}
    return {"error": child.stderr[-500:], "exit_code": child.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="runs per command (default 15; quick 3)")
    parser.add_argument("--breakdown", action="store_true", help="only print the start-up stages (writes nothing)")
    args = parser.parse_args()
    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in _bench.CHILD_ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            subprocess.run([sys.executable, "-c", STAGES], env=env, capture_output=True, check=True)  # write bytecode
            for name, ms in stage_breakdown(env).items():
                print(f"{ms:7.1f} ms  {name}")
        return
    repeats = args.repeats or (3 if args.quick else 15)
    machine = _bench.Machine()
    with tempfile.TemporaryDirectory() as tmp:
        cached_env = {k: v for k, v in _bench.CHILD_ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        nowrite_env = {**_bench.CHILD_ENV, "PYTHONDONTWRITEBYTECODE": "1"}
        nowrite_env.pop("PYTHONPYCACHEPREFIX", None)
        notable_env = {**cached_env, "AUDITFT_NO_PLUGIN_CACHE": "1"}
        settings = {"cached": measure(cached_env, repeats), "no-write": measure(nowrite_env, repeats),
                    "no-table": measure(notable_env, repeats)}
        profile = cprofile_plugins(cached_env, Path(tmp) / "plugins.prof")
        stages = stage_breakdown(cached_env, 3 if args.quick else 5)
    summary = settings["cached"]
    proofs = {
        "auditft --help": {"importtime": import_profile(["--help"]), "sys_modules": sys_modules_probe(["--help"])},
        "auditft plugins": {"importtime": import_profile(["plugins"]), "sys_modules": sys_modules_probe(["plugins"])},
    }
    no_torch = all(not p["importtime"]["torch_imported"] and "torch" not in p["sys_modules"].get("heavy", ["torch"])
                   for p in proofs.values())
    worst = summary["worst_auditft_best_s"]
    for setting, values in settings.items():
        for name in COMMANDS:
            print(f"  [{setting}] {name}: best {values[name]['best_s']:.3f} s, median {values[name]['median_s']:.3f} s",
                  file=sys.stderr)
    for name, p in proofs.items():
        print(f"  {name}: heavy modules imported: {p['importtime']['heavy_imported'] or 'none'}", file=sys.stderr)
    _bench.finish("P7", what="`auditft --help` and `auditft plugins` start-up (slower of the two, best of N)",
                  metric="seconds", value=round(worst, 4), op="<=", target=TARGET, quick=args.quick,
                  machine=machine, unit=" s",
                  figures={"repeats": repeats, "bytecode": settings, "no_torch_import": no_torch,
                           "no_write_worst_best_s": settings["no-write"]["worst_auditft_best_s"],
                           "no_table_worst_best_s": settings["no-table"]["worst_auditft_best_s"],
                           "imports": proofs, "cprofile_plugins_warm": profile,
                           "startup_stages_ms": stages},
                  command=f".venv/bin/python benchmarks/p7_cli_startup.py --repeats {repeats}")
    print(f"P7 torch imported by --help/plugins: {'no' if no_torch else 'YES'}")


if __name__ == "__main__":
    main()
