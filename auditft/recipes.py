"""Running every tuner of a several-tuner suite (``auditft.tuner_list``), then comparing them.

Each tuner's run is an ordinary run (``auditft.run.execute``): its own run directory, gate,
report, sign-off and release. What they share is work, never evidence: every run validates
the same data and splits it with the same seed, and the base model's figures (encoder,
embeddings, linear probe, base answers) are computed once and handed to each run's model
session (``ModelSession.base_cache_key`` says what must agree for that).

The batch lives in ``<reports>/compare/<batch id>/``, beside the runs and outside each of
them: ``batch.json`` (which run belongs to which tuner, and each one's state) and, once at
least two runs finished, the comparison (``compare.json``, ``compare.html``; see
``auditft.compare``). ``auditft run SUITE --resume <that folder>`` finishes only what is
missing: a finished run is kept, an interrupted one resumes in its own directory (its own
resume rules apply), one never started starts.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import AuditftError, ExitCode, RunDirError, SuiteError
from auditft.fsutil import atomic_write_json
from auditft.signoff.clock import now_iso
from auditft.signoff.layout import read_state
from auditft.tuner_list import Recipe

if TYPE_CHECKING:
    from auditft.context import Prepared
    from auditft.plugins import PluginManager

BATCH_FILE = "batch.json"
BATCHES_DIR = "compare"  # beside ``auditft compare``'s own output


@dataclass
class Outcome:
    """One tuner's result in this invocation."""

    name: str
    run_dir: Path | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0
    #: ``kept`` (finished before), ``resumed``, ``new``
    how: str = "new"


@dataclass
class BatchResult:
    folder: Path
    outcomes: list[Outcome] = field(default_factory=list)
    comparison: Path | None = None
    comparison_note: str | None = None

    def exit_code(self) -> int:
        """0 every run passed, 3 one was blocked; a failed run's own code comes first."""
        failed = [o for o in self.outcomes if o.error is not None]
        if failed:
            return failed[0].exit_code
        passed = all(o.report is not None and o.report.get("verdict") == "passed" for o in self.outcomes)
        return int(ExitCode.OK if passed else ExitCode.BLOCKED)


def suite_digest(recipe: Recipe) -> str:
    """What a tuner's run must find unchanged on resume: its resolved suite."""
    blob = json.dumps(recipe.suite.resolved_dict(), sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def find_batch(path: Path) -> Path | None:
    """The batch folder ``path`` is, or the one that holds the run directory ``path``."""
    path = Path(path)
    if (path / BATCH_FILE).is_file():
        return path
    if not (path / "state.json").is_file():
        return None
    for candidate in sorted((path.parent / BATCHES_DIR).glob(f"*/{BATCH_FILE}")):
        try:
            entries = json.loads(candidate.read_text(encoding="utf-8")).get("tuners", [])
        except (OSError, ValueError):
            continue
        if any(e.get("run_id") == path.name for e in entries):
            return candidate.parent
    return None


def run_all(recipes: list[Recipe], pm: PluginManager, *, reports: Path, author: str, resume: Path | None = None,
            announce: Callable[[str], None] = print) -> BatchResult:
    """Prepare every tuner (all input errors before anything is written), run each in turn,
    then compare the finished runs."""
    from auditft import distributed
    from auditft.plan import prepare

    if distributed.enabled():
        raise SuiteError(f"{recipes[0].suite.source}: tuners: a data-parallel launch runs one tuner; launch "
                         "each with a single-tuner suite")
    prepared = [(recipe, prepare(recipe.suite, pm)) for recipe in recipes]
    folder, record = _open_batch(recipes, reports, author, resume)
    result = BatchResult(folder)
    shared: dict[str, dict[str, Any]] = {}  # base model figures, one cache per base_cache_key
    for number, (recipe, plan) in enumerate(prepared, 1):
        announce(f"[{number}/{len(prepared)}] tuner {recipe.name} ({recipe.suite.tuner.kind})")
        result.outcomes.append(_run_one(recipe, plan, pm, folder, record, author, shared))
    # every finished run of the batch, also those an earlier invocation (or --tuner) ran
    finished = [folder.parent.parent / e["run_id"] for e in record["tuners"]
                if e.get("state") == "complete" and e.get("run_id")]
    result.comparison, result.comparison_note = _compare(folder, finished)
    record["comparison"] = None if result.comparison is None else result.comparison.name
    record["comparison_note"] = result.comparison_note
    _save(folder, record)
    return result


def _run_one(recipe: Recipe, plan: Prepared, pm: PluginManager, folder: Path, record: dict[str, Any],
             author: str, shared: dict[str, dict[str, Any]]) -> Outcome:
    from auditft import guards
    from auditft.compare.evidence import reset_peak_memory
    from auditft.inference import ModelSession
    from auditft.run import execute

    entry = _entry(record, recipe)
    reports = folder.parent.parent  # <reports>/compare/<batch id>: the runs sit beside "compare"
    run_dir = reports / entry["run_id"] if entry.get("run_id") else None
    outcome = Outcome(recipe.name, run_dir)
    if run_dir is not None and _phase(run_dir) == "complete" and (run_dir / "report.json").is_file():
        outcome.report, outcome.how = json.loads((run_dir / "report.json").read_text(encoding="utf-8")), "kept"
        entry.update(state="complete", verdict=outcome.report.get("verdict"))
        _save(folder, record)
        return outcome

    def opened(run_id: str, directory: Path) -> None:
        outcome.run_dir = directory
        entry.update(run_id=run_id, state="running", started_at=entry.get("started_at") or now_iso())
        _save(folder, record)

    # a run killed before it wrote its state cannot resume: that tuner starts a new run
    resume = run_dir if run_dir is not None and _phase(run_dir) is not None else None
    outcome.how = "resumed" if resume is not None else "new"
    cache = shared.setdefault(ModelSession.base_cache_key(recipe.suite, plan.base), {})
    reset_peak_memory()  # each run's peak memory is its own, not the heaviest tuner's before it
    started = time.perf_counter()
    try:
        outcome.report = execute(plan, pm, reports=reports, author=author, resume=resume, base_cache=cache,
                                 on_open=opened)
    except (SystemExit, guards.PluginExit) as exc:
        code = exc.code
        if isinstance(exc, guards.PluginExit) or code in (0, None):  # a plugin's exit is that run's failure
            outcome.error = f"a plugin called {'os._exit' if isinstance(exc, guards.PluginExit) else 'sys.exit'}" \
                            f"({code}) during the run; the run is marked failed"
            outcome.exit_code = int(ExitCode.INTERNAL)
        else:  # a signal (128 + n) stops the whole batch; --resume finishes it
            entry.update(state="interrupted")
            _save(folder, record)
            raise
    except KeyboardInterrupt:
        entry.update(state="interrupted")
        _save(folder, record)
        raise
    except AuditftError as exc:
        outcome.error, outcome.exit_code = " ".join(str(exc).split()), int(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - one tuner's crash must not lose the others' runs
        outcome.error, outcome.exit_code = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500], 1
    entry["seconds"] = round(time.perf_counter() - started, 1)
    if outcome.report is not None:
        entry.update(state="complete", verdict=outcome.report.get("verdict"))
    else:
        entry.update(state="failed", error=outcome.error)
    _save(folder, record)
    return outcome


def _entry(record: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    for entry in record["tuners"]:
        if entry["name"] == recipe.name:
            return entry
    entry = {"name": recipe.name, "kind": recipe.suite.tuner.kind, "suite": recipe.suite.name,
             "suite_sha256": suite_digest(recipe), "run_id": None, "state": "pending"}
    record["tuners"].append(entry)
    return entry


def _open_batch(recipes: list[Recipe], reports: Path, author: str,
                resume: Path | None) -> tuple[Path, dict[str, Any]]:
    """A new batch folder, or the batch ``resume`` names, checked against the suite."""
    source = recipes[0].suite.source
    base_name = recipes[0].suite.name.removesuffix(f"-{recipes[0].name}")
    if resume is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        batch_id = f"{base_name}-{stamp}-{secrets.token_hex(3)}"
        folder = Path(reports) / BATCHES_DIR / batch_id
        folder.mkdir(parents=True)
        record: dict[str, Any] = {"batch_id": batch_id, "suite": base_name, "suite_file": str(Path(source).resolve()),
                                  "reports": str(Path(reports).resolve()), "author": author,
                                  "created_at": now_iso(), "tuners": []}
        for recipe in recipes:
            _entry(record, recipe)
        _save(folder, record)
        return folder, record
    found = find_batch(resume)
    if found is None:
        raise RunDirError(f"{resume}: neither a batch folder of a several-tuner run (holding {BATCH_FILE}) nor a "
                          "run directory one lists")
    folder = found
    try:
        record = json.loads((folder / BATCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{folder / BATCH_FILE}: unreadable ({exc})") from None
    if record.get("suite") != base_name:
        raise RunDirError(f"{folder}: a batch of suite {record.get('suite')!r}, not {base_name!r}")
    for recipe in recipes:
        known = next((e for e in record["tuners"] if e["name"] == recipe.name), None)
        if known is not None and known.get("suite_sha256") != suite_digest(recipe):
            raise RunDirError(f"{source}: tuner {recipe.name!r} changed since batch {folder.name} ran it "
                              "(suite, data or options); start a new batch instead")
        _entry(record, recipe)
    record["resumed_at"] = [*record.get("resumed_at", []), now_iso()]
    _save(folder, record)
    return folder, record


def _compare(folder: Path, run_dirs: list[Path]) -> tuple[Path | None, str | None]:
    """The comparison of the finished runs, written into the batch folder."""
    from auditft.compare.build import compare, write_comparison
    from auditft.compare.runs import load_run

    if len(run_dirs) < 2:
        return None, f"{len(run_dirs)} run(s) finished: nothing to compare"
    try:
        result, _ = compare([load_run(p) for p in run_dirs])
    except AuditftError as exc:
        return None, f"not compared: {' '.join(str(exc).split())}"
    _, html = write_comparison(result, folder)
    return html, None


def _phase(run_dir: Path) -> str | None:
    try:
        phase = read_state(run_dir).get("phase")
    except AuditftError:
        return None
    return None if phase is None else str(phase)


def _save(folder: Path, record: dict[str, Any]) -> None:
    atomic_write_json(folder / BATCH_FILE, record)
