"""Run directories: naming, phase record, and reading a run back.

``state.json`` records the phase (``tuning`` -> ``auditing`` -> ``gating`` -> ``reporting``
-> ``complete``, or ``failed``); only a ``complete`` run with a ``manifest.json`` is a
finished run. A run directory is identified by its ``state.json``.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditft.errors import RunDirError
from auditft.fsutil import atomic_write_json
from auditft.signoff.clock import now_iso
from auditft.signoff.ledger import Ledger, LEDGER_NAME

STATE_FILE = "state.json"
RUN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}-\d{8}-\d{6}-[0-9a-f]{6}$")


def new_run_id(name: str, when: datetime | None = None) -> str:
    when = when or datetime.now(timezone.utc)
    return f"{name}-{when.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def create_run_dir(reports: Path, name: str) -> tuple[str, Path]:
    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        run_id = new_run_id(name)
        run_dir = reports / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        # the name pattern forbids separators, but check that the path cannot escape anyway
        if run_dir.resolve().parent != reports.resolve():
            raise RunDirError(f"run id {run_id!r} escapes the reports directory")
        return run_id, run_dir
    raise RunDirError(f"{reports}: could not allocate a fresh run directory")


def write_state(run_dir: Path, phase: str, **fields: Any) -> None:
    path = Path(run_dir) / STATE_FILE
    state = read_state(run_dir) if path.exists() else {}
    state.update(fields)
    state["phase"] = phase
    state.setdefault("history", []).append({"phase": phase, "time": now_iso()})
    atomic_write_json(path, state)


def read_state(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{run_dir}: not an auditft run directory (no {STATE_FILE})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable run state: {exc}") from None


def ledger_for(run_dir: Path) -> Ledger:
    """The shared ledger lives beside the run directories."""
    return Ledger(Path(run_dir).resolve().parent / LEDGER_NAME)


def find_runs(reports: Path) -> list[Path]:
    reports = Path(reports)
    if not reports.is_dir():
        return []
    return sorted(p for p in reports.iterdir() if p.is_dir() and (p / STATE_FILE).exists())
