"""Integrity: everything ``auditft verify`` checks of a run (the ledger chain, the run's copy
of its events, the bound artefact bytes, reviewer signatures, releases), as one-line problems."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError
from auditft.manifest import symlinks
from auditft.signoff import clock, identity
from auditft.signoff.clock import CLOCK_SKEW, parse_iso
from auditft.signoff.encoding import content_hash
from auditft.signoff.events import EVENTS_FILE, bound_artefacts, bound_run_id, run_events
from auditft.signoff.review import REVIEWER_EVENTS
from auditft.signoff.layout import ledger_for, read_state
from auditft.signoff.ledger import Ledger

def integrity_problems(run_dir: Path, ledger: Ledger | None = None) -> list[str]:
    """Everything ``verify`` checks, as one-line problems (empty when intact)."""
    run_dir = Path(run_dir).resolve()
    ledger = ledger or ledger_for(run_dir)
    now = clock.utcnow()
    problems = [f"{ledger.path}: {p}" for p in ledger.verify(now)]
    try:
        mine = run_events(run_dir)
    except IntegrityError as exc:
        return [*problems, str(exc)]
    run_id = bound_run_id(run_dir)
    theirs = ledger.events(run_id)
    if run_dir.name != run_id:
        problems.append(f"{run_dir}: the folder is named {run_dir.name!r} but holds run {run_id!r} (renamed or copied)")
    problems += _copy_problems(run_dir, run_id, mine, ledger)
    known = {e.get("hash") for e in mine}
    for event in theirs:
        if event.get("hash") not in known:
            problems.append(f"{run_dir / EVENTS_FILE}: ledger event seq {event.get('seq')} "
                            f"({event.get('type')}) is missing from the run's own record")
    gated = next((e for e in theirs if e.get("type") == "gated"), None)
    if gated is None:
        problems.append(f"{ledger.path}: no 'gated' event for run {run_id!r}")
        return problems
    problems += _artefact_problems(run_dir, gated)
    problems += _reviewer_problems(run_dir, ledger, theirs, gated)
    problems += _release_problems(run_dir, theirs)
    problems += _timestamp_problems(ledger, theirs)
    return problems


def _timestamp_problems(ledger: Ledger, theirs: list[dict[str, Any]]) -> list[str]:
    """RFC 3161 tokens (``auditft.timestamping``): each verifies over its line, and the
    TSA's time agrees with the event's own within the clock skew."""
    from auditft.signoff import timestamping

    problems = []
    for event in theirs:
        if event.get("type") not in timestamping.STAMPED:
            continue
        problem, when = timestamping.check(ledger.path, event)
        if problem:
            problems.append(f"{ledger.path}: {problem}")
        elif when is not None and abs(when - parse_iso(event["time"])) > CLOCK_SKEW:
            problems.append(f"{ledger.path}: seq {event['seq']} ({event['type']}) is dated {event['time']} but the "
                            f"time-stamping authority says {when:%Y-%m-%dT%H:%M:%SZ} (the local clock was off)")
    return problems


def _copy_problems(run_dir: Path, run_id: str, mine: list[dict[str, Any]], ledger: Ledger) -> list[str]:
    """The run's copy: each event its own, in ledger order, once, equal to the ledger's line."""
    problems = []
    by_seq = {e.get("seq"): e for e in ledger.events()}
    last = 0
    for event in mine:
        what = f"{event.get('type')} by {identity.printable(str(event.get('actor')))}"
        seq = event.get("seq")
        if event.get("run_id") != run_id:
            problems.append(f"{run_dir / EVENTS_FILE}: event seq {seq} ({what}) belongs to run "
                            f"{identity.printable(str(event.get('run_id')))!r}, not this one (copied in)")
        elif content_hash(event) != event.get("hash"):
            problems.append(f"{run_dir / EVENTS_FILE}: event seq {seq} ({what}) does not match its own hash (edited)")
        elif by_seq.get(seq) != event:
            problems.append(f"{ledger.path}: event seq {seq} ({what}) recorded in {run_dir / EVENTS_FILE} is "
                            "missing or different in the ledger (truncated or edited)")
        if isinstance(seq, int):
            if seq <= last:
                problems.append(f"{run_dir / EVENTS_FILE}: event seq {seq} comes after seq {last} "
                                "(reordered or duplicated)")
            last = max(last, seq)
    return problems


def _artefact_problems(run_dir: Path, gated: dict[str, Any]) -> list[str]:
    problems = []
    recorded = gated.get("artefacts", {})
    current = bound_artefacts(run_dir)
    for rel, digest in recorded.items():
        if rel not in current:
            problems.append(f"{run_dir / rel}: missing (was sha256 {digest[:12]}...)")
        elif current[rel] != digest:
            problems.append(f"{run_dir / rel}: bytes changed since the gate (sha256 {current[rel][:12]}... "
                            f"!= {digest[:12]}...)")
    for rel in sorted(set(current) - set(recorded)):
        problems.append(f"{run_dir / rel}: file not recorded at the gate")
    for rel in symlinks(run_dir):
        problems.append(f"{run_dir / rel}: symlink inside a run directory (never followed, never bound)")
    problems += odd_entries(run_dir)
    return problems


def odd_entries(root: Path) -> list[str]:
    """What no approval can bind: anything but regular files and non-empty folders (FIFOs,
    sockets, devices, empty folders) and files with setuid, setgid or sticky bits."""
    problems = []
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] == "work" or path.is_symlink():
            continue
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            if not any(path.iterdir()):
                problems.append(f"{path}: empty folder (not bound by any hash; remove it)")
        elif not stat.S_ISREG(mode):
            problems.append(f"{path}: not a regular file (a FIFO, socket or device cannot be bound)")
        elif mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
            problems.append(f"{path}: setuid, setgid or sticky bit set (modes are never shipped; remove it)")
    return problems


def _reviewer_problems(run_dir: Path, ledger: Ledger, theirs: list[dict[str, Any]],
                       gated: dict[str, Any]) -> list[str]:
    from auditft.signoff import trust
    from auditft.signoff.signing import verify_signature

    problems = []
    report_path = run_dir / "report.json"
    policy = json.loads(report_path.read_text(encoding="utf-8")).get("release", {}) if report_path.exists() else {}
    listed = {identity.key(name) for name in policy.get("reviewer_keys", {})}
    for event in theirs:
        if event.get("type") not in REVIEWER_EVENTS:
            continue
        actor = str(event.get("actor"))
        where = f"{ledger.path}: seq {event.get('seq')}: {event['type']} by {identity.printable(actor)!r}"
        if event.get("report_sha256") != gated.get("report_sha256"):
            problems.append(f"{where} is bound to another report (copied from another run?)")
        expected = trust.trusted_key(run_dir.parent, actor)
        if expected is not None:
            recorded = [e for e in ledger.events() if e.get("type") == "trusted"
                        and identity.same_person(str(e.get("reviewer")), actor)]
            if not recorded or recorded[-1].get("fingerprint") != trust.fingerprint(expected):
                problems.append(f"{where}: the trust store's key for this reviewer is not the one the ledger "
                                "recorded when it was trusted (the store was edited)")
        if expected is not None or identity.key(actor) in listed or policy.get("require_signatures"):
            if expected is None:
                problems.append(f"{where}: the reviewer has no key in the trust store {trust.store_path(run_dir.parent)}")
            elif not verify_signature(event, expected):
                problems.append(f"{where} lacks a valid signature by their trusted key")
        if "at" in event and abs((parse_iso(event["time"]) - parse_iso(event["at"])).total_seconds()) > 300:
            problems.append(f"{where} was signed at {event['at']} but appended at {event['time']} (replayed)")
    return problems


def _release_problems(run_dir: Path, theirs: list[dict[str, Any]]) -> list[str]:
    """An intent without an outcome, or a released record whose folder is not there."""
    problems = []
    pending = None
    for event in theirs:
        if event.get("type") == "release_intent":
            pending = event
        elif event.get("type") in ("released", "release_abandoned"):
            pending = None
            destination = Path(str(event.get("destination", "")))
            if event.get("type") == "released" and not destination.is_dir():
                problems.append(f"{destination}: recorded as released (seq {event.get('seq')}) but not there")
    if pending is not None:
        destination = Path(str(pending.get("destination", "")))
        there = "exists" if destination.exists() else "does not exist"
        problems.append(f"{run_dir}: release intent seq {pending.get('seq')} to {destination} has no outcome "
                        f"(interrupted; the folder {there}): run `auditft release` again to reconcile")
    return problems


def ensure_intact(run_dir: Path) -> None:
    read_state(run_dir)  # "not a run" (exit 2) before "tampered with" (exit 6)
    problems = integrity_problems(run_dir)
    if problems:
        more = f" (and {len(problems) - 1} more; run `auditft verify`)" if len(problems) > 1 else ""
        raise IntegrityError(problems[0] + more)
