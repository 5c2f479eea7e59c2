"""Opening a run directory: checks that must hold before one exists, then a new run
(directory, resolved suite copy, pre-registration in the ledger, sealed inputs) or the reopening
of an interrupted run of the very same suite, data and model (``auditft run --resume``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from auditft.context import Prepared
from auditft.errors import RunDirError
from auditft.fsutil import atomic_write_json, atomic_write_text
from auditft.signoff import identity, sealing, trust
from auditft.signoff.clock import now_iso
from auditft.signoff.events import record, run_events
from auditft.signoff.layout import create_run_dir, ledger_for, read_state, write_state
from auditft.signoff.ledger import LEDGER_NAME, Ledger


def before_opening(prepared: Prepared, reports: Path, author: str) -> dict[str, Any]:
    """What must hold before a run directory exists: a valid author name, a ledger this
    process may write (a keyed ledger needs its key), reviewer keys the trust store holds.
    Returns the sign-off facts the report records."""
    identity.person(author, "--author")
    Ledger(Path(reports).resolve() / LEDGER_NAME).check_writable()
    suite = prepared.suite
    return {"preregistration": sealing.preregistration(suite, prepared.data), "resumed": [],
            "reviewer_key_fingerprints": trust.check_policy(reports, suite.release.reviewer_keys, str(suite.source))}


def open_run(prepared: Prepared, reports: Path, author: str, resume: Path | None,
             facts: dict[str, Any]) -> tuple[str, Path, str, str, dict[str, Any] | None]:
    """Create (or reopen) the run directory: (run id, directory, created at, author, the
    report when a resumed run turns out to be finished already)."""
    suite = prepared.suite
    if resume is None:
        run_id, run_dir = create_run_dir(reports, suite.name)
        created_at = now_iso()
        import yaml

        atomic_write_text(run_dir / "suite.yaml", yaml.safe_dump(suite.resolved_dict(), sort_keys=False))
        atomic_write_json(run_dir / "work" / "inputs.json", _inputs(prepared))
        write_state(run_dir, "tuning", run_id=run_id, suite=suite.name, author=author, created_at=created_at)
        created = record(run_dir, {"type": "created", "run_id": run_id, "actor": author, "suite": suite.name,
                                   **facts["preregistration"]})
        sealing.seal(run_dir, run_id, run_dir / "work" / "inputs.json")  # what a resume must find unchanged
        facts["preregistration"] = {**facts["preregistration"], "created_seq": created["seq"],
                                    "earlier_runs_that_differ": sealing.earlier_differences(
                                        ledger_for(run_dir).events(), suite.name, run_id, facts["preregistration"])}
        return run_id, run_dir, created_at, author, None
    run_dir, run_id, created_at, run_author = _reopen(resume, prepared)
    created = next((e for e in ledger_for(run_dir).events(run_id) if e.get("type") == "created"), {})
    if not sealing.is_sealed(run_dir, run_id, run_dir / "work" / "inputs.json"):
        raise RunDirError(f"{run_dir / 'work' / 'inputs.json'}: does not match its seal in the ledger; "
                          "the run cannot be resumed (start a new run)")
    changed = [k for k, v in facts["preregistration"].items() if created.get(k) != v]
    if changed:
        raise RunDirError(f"{run_dir}: the suite's {', '.join(c.removesuffix('_sha256') for c in changed)} differ from "
                          "what the run pre-registered; start a new run instead")
    facts["preregistration"] = {**{k: created.get(k) for k in facts["preregistration"]},
                                "created_seq": created.get("seq"),
                                "earlier_runs_that_differ": sealing.earlier_differences(
                                    ledger_for(run_dir).events(), suite.name, run_id, created)}
    if any(e.get("type") == "gated" for e in run_events(run_dir)):
        # killed after the gate was recorded: the evidence is final, only the phase is stale
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        write_state(run_dir, "complete", verdict=report["verdict"], state=report["state"])
        shutil.rmtree(run_dir / "work", ignore_errors=True)
        return run_id, run_dir, created_at, run_author, report
    phase = read_state(run_dir).get("phase")
    record(run_dir, {"type": "resumed", "run_id": run_id, "actor": author, "from_phase": phase})
    facts["resumed"] = [{"time": e.get("time"), "from_phase": e.get("from_phase"), "actor": e.get("actor")}
                        for e in ledger_for(run_dir).events(run_id) if e.get("type") == "resumed"]
    facts["recomputed"] = []
    return run_id, run_dir, created_at, run_author, None  # the run keeps its author (four-eyes)


def _inputs(prepared: Prepared) -> dict[str, Any]:
    """What a resumed run must find unchanged: the resolved suite, data and base weights."""
    return {"suite": prepared.suite.resolved_dict(), "data": {f.role: f.sha256 for f in prepared.data.files},
            "base": prepared.base.weights_sha256}


def _reopen(run_dir: Path, prepared: Prepared) -> tuple[Path, str, str, str]:
    """Check that ``run_dir`` is an unfinished run of this very suite, data and model."""
    state = read_state(run_dir)
    if state.get("phase") == "complete":
        raise RunDirError(f"{run_dir}: the run is already complete; nothing to resume")
    inputs_path = Path(run_dir) / "work" / "inputs.json"
    if not inputs_path.exists() or state.get("suite") != prepared.suite.name:
        raise RunDirError(f"{run_dir}: not an unfinished run of suite {prepared.suite.name!r}")
    recorded = json.loads(inputs_path.read_text(encoding="utf-8"))
    for what in ("suite", "data", "base"):
        if recorded[what] != _inputs(prepared)[what]:
            raise RunDirError(f"{run_dir}: the {what} changed since this run started; start a new run instead")
    return Path(run_dir), state["run_id"], state["created_at"], state["author"]
