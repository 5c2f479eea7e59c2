"""Sign-off: the review record of a run, integrity checks, and approve / reject / waive.

Only people act here, through the CLI; no hook can reach this module's decisions. Every
action first verifies the ledger chain and the artefact bytes (exit 6 when broken), then
the policy (exit 4 with the reason), then appends one event under a per-run lock.

The approval binds to the audited *content*: the sha256 of ``report.json`` and of every
adapter file (plus the suite copy, model card and manifest). ``report.html`` is a rendering
of ``report.json`` whose banner shows the current state, so it is rebuilt by
``auditft report`` and is deliberately not part of the bound set.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError, RefusedError, RunDirError
from auditft.fsutil import atomic_write_text
from auditft.ledger import Ledger, content_hash, now_iso, parse_iso
from auditft.manifest import symlinks
from auditft.rundir import ledger_for, read_state

EVENTS_FILE = "events.jsonl"
#: renderings, scratch and bookkeeping: not part of what an approval binds to
UNBOUND = ("report.html", "state.json", EVENTS_FILE, "error.txt", ".lock")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def check_id(check: dict[str, Any]) -> str:
    return f"{check['audit']}:{check['metric']}"


# -- recording -----------------------------------------------------------------------------


def record(run_dir: Path, event: dict[str, Any], *, when: datetime | None = None) -> dict[str, Any]:
    """Append to the shared ledger, then to the run's own copy of its events."""
    entry = ledger_for(run_dir).append(event, when=when)
    path = Path(run_dir) / EVENTS_FILE
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic_write_text(path, existing + json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
    return entry


def run_events(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
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


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Serialise sign-off actions on one run (check-then-append must not race), after
    completing a run record that a crash left one event behind the ledger."""
    read_state(run_dir)  # a directory that is not a run is refused before anything is written to it
    with open(Path(run_dir) / ".lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            sync_run_record(run_dir)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def sync_run_record(run_dir: Path) -> int:
    """``record`` appends to the ledger, then to the run's copy; a crash in between leaves
    the copy short. Copy the missing trailing events over, but only when the ledger verifies
    (chain, HMAC with a key) and the run's copy is an exact prefix of the ledger's events for
    this run, so nothing unverified is ever adopted. Returns how many events were added."""
    ledger = ledger_for(run_dir)
    try:
        mine = run_events(run_dir)
    except IntegrityError:
        return 0
    theirs = ledger.events(Path(run_dir).name)
    if len(theirs) <= len(mine) or theirs[: len(mine)] != mine or ledger.verify():
        return 0
    path = Path(run_dir) / EVENTS_FILE
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    extra = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in theirs[len(mine):])
    atomic_write_text(path, existing + extra)
    return len(theirs) - len(mine)


# -- the review record -------------------------------------------------------------------------


@dataclass
class Review:
    run_dir: Path
    report: dict[str, Any]
    events: list[dict[str, Any]]
    gated: dict[str, Any]
    approvals: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    waivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    released: dict[str, Any] | None = None

    @property
    def policy(self) -> dict[str, Any]:
        return self.report["release"]

    @property
    def author(self) -> str:
        return self.report["author"]

    def unwaived(self) -> list[str]:
        if not self.report["checks"] and self.report.get("verdict") != "passed":
            return ["(no checks: the suite defines no gates, so nothing can be approved)"]
        return [check_id(c) for c in self.report["checks"]
                if c["status"] != "pass" and check_id(c) not in self.waivers]

    def live_approvals(self, now: datetime) -> list[dict[str, Any]]:
        """Unexpired approvals, one per reviewer. Expiry counts from ``at``, the time inside
        the (signed) payload, so re-appending an old signed approval does not refresh it."""
        expires = timedelta(seconds=self.policy["approval_expires_seconds"])
        live: dict[str, dict[str, Any]] = {}
        for approval in self.approvals:
            if parse_iso(approval.get("at", approval["time"])) + expires > now:
                live.setdefault(approval["actor"], approval)
        return list(live.values())

    def window_ends(self) -> datetime:
        return parse_iso(self.gated["time"]) + timedelta(seconds=self.policy["review_window_seconds"])

    def state(self) -> str:
        if self.released:
            return "released"
        if self.rejections:
            return "rejected"
        if self.approvals:
            return "approved"
        return "awaiting_review" if not self.unwaived() else "blocked"

    def waiting_for(self, now: datetime) -> str:
        state = self.state()
        if state in ("released", "rejected"):
            return f"nothing: {state}"
        needs = []
        if self.unwaived():
            needs.append(f"checks fixed or waived: {', '.join(self.unwaived())}")
        missing = self.policy["approvals_required"] - len(self.live_approvals(now))
        if missing > 0:
            needs.append(f"{missing} more approval{'s' if missing > 1 else ''}")
        if now < self.window_ends():
            needs.append(f"the review window (ends {self.window_ends():%Y-%m-%d %H:%M:%S} UTC)")
        return "; ".join(needs) if needs else "`auditft release`"


def load_review(run_dir: Path) -> Review:
    run_dir = Path(run_dir)
    state = read_state(run_dir)
    if state.get("phase") != "complete" or not (run_dir / "report.json").exists():
        raise RunDirError(f"{run_dir}: the run is not complete (phase {state.get('phase')!r}); "
                          "nothing to review")
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    events = run_events(run_dir)
    gated = next((e for e in events if e.get("type") == "gated"), None)
    if gated is None:
        raise IntegrityError(f"{run_dir / EVENTS_FILE}: no 'gated' event; the run's record is missing")
    review = Review(run_dir, report, events, gated)
    for event in events:
        kind = event.get("type")
        if kind == "approved":
            review.approvals.append(event)
        elif kind == "rejected":
            review.rejections.append(event)
        elif kind == "waived" and isinstance(event.get("check"), str):
            review.waivers[event["check"]] = event
        elif kind == "released":
            review.released = event
    return review


# -- integrity -------------------------------------------------------------------------------


def integrity_problems(run_dir: Path, ledger: Ledger | None = None) -> list[str]:
    """Everything ``verify`` checks, as one-line problems (empty when intact)."""
    from auditft.signing import verify_signature

    run_dir = Path(run_dir)
    ledger = ledger or ledger_for(run_dir)
    problems = [f"{ledger.path}: {p}" for p in ledger.verify()]
    try:
        mine = run_events(run_dir)
    except IntegrityError as exc:
        return [*problems, str(exc)]
    by_seq = {e.get("seq"): e for e in ledger.events()}
    run_id = run_dir.name
    for event in mine:
        what = f"{event.get('type')} by {event.get('actor')}"
        if content_hash(event) != event.get("hash"):
            problems.append(f"{run_dir / EVENTS_FILE}: event seq {event.get('seq')} ({what}) does not match "
                            "its own hash (edited)")
        elif by_seq.get(event.get("seq")) != event:
            problems.append(f"{ledger.path}: event seq {event.get('seq')} ({what}) recorded in "
                            f"{run_dir / EVENTS_FILE} is missing or different in the ledger (truncated or edited)")
    known = {e.get("hash") for e in mine}
    for event in ledger.events(run_id):
        if event.get("hash") not in known:
            problems.append(f"{run_dir / EVENTS_FILE}: ledger event seq {event.get('seq')} "
                            f"({event.get('type')}) is missing from the run's own record")
    gated = next((e for e in mine if e.get("type") == "gated"), None)
    if gated is None:
        problems.append(f"{run_dir / EVENTS_FILE}: no 'gated' event")
        return problems
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
    report_path = run_dir / "report.json"
    if report_path.exists():
        policy = json.loads(report_path.read_text(encoding="utf-8")).get("release", {})
        keys = policy.get("reviewer_keys", {})
        for event in mine:
            actor = event.get("actor")
            if event.get("type") not in ("approved", "rejected", "waived"):
                continue
            if actor in keys or policy.get("require_signatures"):
                if actor not in keys or not verify_signature(event, keys[actor]):
                    problems.append(f"{ledger.path}: seq {event.get('seq')}: {event['type']} by {actor!r} "
                                    "lacks a valid signature by their listed key")
            if "at" in event and abs((parse_iso(event["time"]) - parse_iso(event["at"])).total_seconds()) > 300:
                problems.append(f"{ledger.path}: seq {event.get('seq')}: {event['type']} by {actor!r} was "
                                f"signed at {event['at']} but appended at {event['time']} (replayed)")
    return problems


def ensure_intact(run_dir: Path) -> None:
    read_state(run_dir)  # "not a run" (exit 2) before "tampered with" (exit 6)
    problems = integrity_problems(run_dir)
    if problems:
        more = f" (and {len(problems) - 1} more; run `auditft verify`)" if len(problems) > 1 else ""
        raise IntegrityError(problems[0] + more)


# -- actions ---------------------------------------------------------------------------------


def _reviewer_event(review: Review, kind: str, reviewer: str, key: Path | None, when: datetime | None = None,
                    **fields: Any) -> dict[str, Any]:
    from auditft.signing import public_key_of, sign

    event = {"type": kind, "run_id": review.run_dir.name, "actor": reviewer, "at": now_iso(when), **fields}
    keys = review.policy.get("reviewer_keys", {})
    if reviewer in keys:
        if key is None:
            raise RefusedError(f"reviewer {reviewer!r} has a public key in the release policy: sign with --key")
        if public_key_of(key) != keys[reviewer]:
            raise RefusedError(f"{key}: not the key listed for reviewer {reviewer!r} in the release policy")
    elif review.policy.get("require_signatures"):
        raise RefusedError(f"the release policy requires signatures and lists no key for {reviewer!r}")
    if key is not None:
        event["signature"] = sign(event, key)
    return event


def approve(run_dir: Path, reviewer: str, comment: str, *, key: Path | None = None,
            when: datetime | None = None) -> dict[str, Any]:
    now = when or utcnow()
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        _refuse_if_closed(review)
        if review.unwaived():
            raise RefusedError(f"the gate blocked this run and these checks are neither passed nor waived: "
                               f"{', '.join(review.unwaived())}")
        if review.policy["four_eyes"] and reviewer == review.author:
            raise RefusedError(f"four-eyes policy: {reviewer!r} ran this job and may not approve it")
        if any(a["actor"] == reviewer for a in review.live_approvals(now)):
            raise RefusedError(f"{reviewer!r} has already approved this run")
        event = _reviewer_event(review, "approved", reviewer, key, now, comment=comment,
                                report_sha256=review.gated["report_sha256"],
                                artefacts=bound_artefacts(run_dir))
        return record(run_dir, event, when=now)


def reject(run_dir: Path, reviewer: str, comment: str, *, key: Path | None = None,
           when: datetime | None = None) -> dict[str, Any]:
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        if review.released:
            raise RefusedError("this run was already released; a rejection cannot recall it")
        event = _reviewer_event(review, "rejected", reviewer, key, when, comment=comment,
                                report_sha256=review.gated["report_sha256"])
        return record(run_dir, event, when=when)


def waive(run_dir: Path, check: str, reviewer: str, reason: str, *, key: Path | None = None,
          when: datetime | None = None) -> dict[str, Any]:
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        _refuse_if_closed(review)
        ids = {check_id(c): c for c in review.report["checks"]}
        matches = [cid for cid in ids if cid == check or cid.split(":", 1)[1] == check]
        if not matches:
            raise RefusedError(f"no check {check!r} in this run (checks: {', '.join(ids)})")
        if len(matches) > 1:
            raise RefusedError(f"{check!r} is ambiguous: name it as one of {', '.join(matches)}")
        target = ids[matches[0]]
        if target["status"] == "pass":
            raise RefusedError(f"check {matches[0]} passed; there is nothing to waive")
        if matches[0] in review.waivers:
            raise RefusedError(f"check {matches[0]} is already waived by {review.waivers[matches[0]]['actor']!r}")
        if review.policy["four_eyes"] and reviewer == review.author:
            raise RefusedError(f"four-eyes policy: {reviewer!r} ran this job and may not waive its checks")
        event = _reviewer_event(review, "waived", reviewer, key, when, check=matches[0], reason=reason,
                                status=target["status"], report_sha256=review.gated["report_sha256"])
        return record(run_dir, event, when=when)


def _refuse_if_closed(review: Review) -> None:
    if review.released:
        raise RefusedError("this run was already released")
    if review.rejections:
        who = review.rejections[-1]["actor"]
        raise RefusedError(f"rejected by {who!r}: a rejected run cannot be approved or waived; re-run it")
