"""Shared helpers for the side-by-side benchmarks (P1-P7): suites derived from the shipped
ones, child processes, a busy-machine meter, and the result file / summary line.

Every benchmark runs its baseline and the auditft code path in the same script run, on the
same machine, with the same data, model, seed and step counts, prints one summary line
(``P1 ratio=... target<=1.05 PASS``) and writes ``benchmarks/results/<id>.json``. Timings are
never asserted: a MISS is a finding, not a failure.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
THREADS = int(os.environ.get("OMP_NUM_THREADS", "2"))

#: environment of every benchmark child: quiet, offline, same thread count on both sides
CHILD_ENV = {
    **os.environ,
    "AUDITFT_PROGRESS": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "PYTHONWARNINGS": "ignore",
    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")) if p),
}


def quiet() -> None:
    """Apply ``CHILD_ENV``'s settings to this process (before torch / transformers import)."""
    for key in ("AUDITFT_PROGRESS", "HF_HUB_OFFLINE", "TRANSFORMERS_VERBOSITY", "TOKENIZERS_PARALLELISM",
                "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[key] = CHILD_ENV[key]
    import warnings

    warnings.filterwarnings("ignore")


def silence_libraries() -> None:
    """What ``auditft.progress.quiet_libraries`` does (``auditft run`` calls it first), applied
    to both sides alike: no library progress bars or chatter on stderr."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def derived_suite(source: str, tmp: Path, *, name: str | None = None, training: dict[str, Any] | None = None,
                  tuner: dict[str, Any] | None = None, audits: list[dict[str, Any]] | None = None,
                  data: dict[str, Any] | None = None) -> Path:
    """A copy of the shipped suite ``source`` (relative to the repo) with absolute data paths and
    the given overrides (``training`` keys are merged into ``tuner.training``), written to ``tmp``."""
    import yaml

    path = ROOT / source
    suite = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("train", "test", "validation"):
        if key in suite["data"]:
            suite["data"][key] = str((path.parent / suite["data"][key]).resolve())
    suite["data"].update(data or {})
    if name:
        suite["name"] = name
    if tuner:
        suite["tuner"].update(tuner)
    suite["tuner"].setdefault("training", {}).update(training or {})
    if audits is not None:
        suite["audits"] = audits
    out = Path(tmp) / f"{suite['name']}.yaml"
    out.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return out


def run_child(script: str | Path, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python script args...`` in a fresh process with ``CHILD_ENV`` (a cold process per
    measurement: no warm caches carried from the other side); its last JSON stdout line is
    the result."""
    started = time.perf_counter()
    child = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                           env=CHILD_ENV, timeout=timeout, cwd=str(ROOT))
    if child.returncode != 0:
        raise RuntimeError(f"benchmark child failed (exit {child.returncode}):\n{child.stderr[-4000:]}")
    lines = [line for line in child.stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"benchmark child printed no JSON:\n{child.stdout[-2000:]}\n{child.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["child_wall_seconds"] = round(time.perf_counter() - started, 3)
    return result


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (``ru_maxrss``, KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def vm_hwm_mb() -> float:
    """Peak RSS since the last ``reset_hwm()`` (``VmHWM``); falls back to ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mb()


def vm_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5), so the next ``vm_hwm_mb()``
    is the peak of the phase in between. ``ru_maxrss`` is not reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cpu_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


class Machine:
    """How busy the machine was while a benchmark ran: the share of all CPUs used by processes
    other than this one and its children (``other_cpu_share``; 0 = quiet machine, 0.5 = one of
    two cores taken by someone else), and the load averages before and after."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.load_before = os.getloadavg()
        self.jiffies = _cpu_busy_jiffies()
        self.own = self._own_cpu()

    @staticmethod
    def _own_cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def report(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        busy, total = _cpu_busy_jiffies()
        hz = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count() or 1
        busy_s = (busy - self.jiffies[0]) / hz
        own = self._own_cpu() - self.own
        other = max(0.0, busy_s - own)
        share = other / max(wall * ncpu, 1e-9)
        return {"wall_seconds": round(wall, 1), "cpus": ncpu, "own_cpu_seconds": round(own, 1),
                "other_cpu_seconds": round(other, 1), "other_cpu_share": round(share, 3),
                "machine": "quiet" if share < 0.1 else "busy",
                "loadavg_before": [round(x, 2) for x in self.load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": THREADS}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                facts["ram_gib"] = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        for name in ("torch", "transformers", "peft", "bitsandbytes"):
            facts[name] = version(name)
    except Exception:  # noqa: BLE001  (facts only)
        pass
    return facts


def verdict(value: float | None, op: str, target: float | None) -> str:
    if target is None or value is None:
        return "INFO"
    ok = value <= target if op == "<=" else value >= target
    return "PASS" if ok else "MISS"


def finish(bench_id: str, *, what: str, metric: str, value: float | None, op: str | None, target: float | None,
           quick: bool, machine: Machine, figures: dict[str, Any], command: str, unit: str = "",
           variant: str = "") -> dict[str, Any]:
    """Write ``results/<id>[-variant][-quick].json`` and print the one-line summary."""
    status = verdict(value, op or "", target)
    load = machine.report()
    result = {
        "id": bench_id, "what": what, "metric": metric, "value": value, "op": op, "target": target,
        "status": status, "quick": quick, "command": command,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {**machine_facts(), **load},
        "figures": figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{bench_id.lower()}{'-' + variant if variant else ''}{'-quick' if quick else ''}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    shown = "n/a" if value is None else (f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}")
    goal = f"target{op}{target:g}" if target is not None else "no target"
    print(f"{bench_id} {metric}={shown}{unit} {goal} {status}"
          f" ({load['machine']} machine: others used {load['other_cpu_share']:.0%} of the CPUs"
          f"{', quick mode' if quick else ''}) -> benchmarks/results/{name}", flush=True)
    return result
