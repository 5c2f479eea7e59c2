"""A run's events: appended to the shared ledger first, then to the run's own copy
(``events.jsonl``, kept only to detect a cut ledger), under a per-run lock; and the set of
files an approval binds to."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError, RunDirError
from auditft.fsutil import atomic_write_text
from auditft.signoff.encoding import serialise, split_lines
from auditft.signoff.layout import ledger_for, read_state

EVENTS_FILE = "events.jsonl"
#: renderings, scratch and bookkeeping: not part of what an approval binds to
UNBOUND = ("report.html", "state.json", EVENTS_FILE, "error.txt", ".lock")


def check_id(check: dict[str, Any]) -> str:
    return f"{check['audit']}:{check['metric']}"


# -- recording -----------------------------------------------------------------------------


def record(run_dir: Path, event: dict[str, Any], *, when: datetime | None = None) -> dict[str, Any]:
    """Append to the shared ledger, then to the run's own copy of its events."""
    run_dir = Path(run_dir).resolve()
    entry = ledger_for(run_dir).append(event, when=when)
    path = run_dir / EVENTS_FILE
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    atomic_write_text(path, existing + serialise(entry) + "\n")
    return entry


def run_events(run_dir: Path) -> list[dict[str, Any]]:
    """The run's own copy of its events (to detect a cut ledger; never the record itself)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for number, line in enumerate(split_lines(path.read_text(encoding="utf-8")), start=1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise IntegrityError(f"{path}: line {number}: not a JSON event") from None
        if not isinstance(event, dict):
            raise IntegrityError(f"{path}: line {number}: not a JSON event")
        events.append(event)
    return events


def bound_artefacts(run_dir: Path) -> dict[str, str]:
    """sha256 of every file an approval binds to, keyed by path relative to the run."""
    from auditft.manifest import hash_tree

    return {rel: digest for rel, digest in hash_tree(Path(run_dir), exclude=("work",), hidden=True).items()
            if rel not in UNBOUND}


def bound_run_id(run_dir: Path) -> str:
    """The run id the run's content claims (``report.json``, else ``state.json``): what
    events are matched by. Whether the ledger agrees is checked by ``load_review``."""
    run_dir = Path(run_dir)
    try:
        return str(json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        state = read_state(run_dir)
        return str(state.get("run_id") or run_dir.name)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Serialise sign-off actions on one run (check-then-append must not race), after
    completing a run record that a crash left one event behind the ledger. Re-entrant within
    a process (a release that re-renders holds the lock already): ``flock`` on a second
    descriptor of the same file would wait for itself."""
    run_dir = Path(run_dir).resolve()
    read_state(run_dir)  # a directory that is not a run is refused before anything is written to it
    if run_dir in _HELD:
        yield
        return
    with open(run_dir / ".lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        _HELD.add(run_dir)
        try:
            sync_run_record(run_dir)
            yield
        finally:
            _HELD.discard(run_dir)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


#: runs whose lock this process holds
_HELD: set[Path] = set()


def sync_run_record(run_dir: Path) -> int:
    """``record`` appends to the ledger, then to the run's copy; a crash in between leaves
    the copy short. Copy the missing trailing events over, but only when the ledger verifies
    (chain, HMAC with a key) and the run's copy is an exact prefix of the ledger's events for
    this run, so nothing unverified is ever adopted. Returns how many events were added."""
    run_dir = Path(run_dir).resolve()
    ledger = ledger_for(run_dir)
    try:
        mine = run_events(run_dir)
        run_id = bound_run_id(run_dir)
    except (IntegrityError, RunDirError):
        return 0
    theirs = ledger.events(run_id)
    if run_dir.name != run_id or len(theirs) <= len(mine) or theirs[: len(mine)] != mine or ledger.verify():
        return 0
    path = run_dir / EVENTS_FILE
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    atomic_write_text(path, existing + "".join(serialise(e) + "\n" for e in theirs[len(mine):]))
    return len(theirs) - len(mine)
