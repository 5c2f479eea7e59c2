"""Sign-off: the review record of a run, integrity checks, and approve / reject / waive.

Only people act here, through the CLI; no hook can reach this module's decisions. Every
action first verifies the ledger chain and the artefact bytes (exit 6 when broken), then
the policy (exit 4 with the reason), then appends one event under a per-run lock.

**The ledger is the record.** A run's identity is its run id as bound at the gate (the
``gated`` event in the shared ledger carries it with the sha256 of ``report.json``). The
review state is computed from the *ledger's* events for that run id whose report hash is
the gated one, never from the run's own ``events.jsonl`` (a copy kept only to detect a cut
ledger), and never from the folder's name: a folder whose name, resolved path or content
does not match its bound identity is refused (exit 6). So renaming or copying a run folder
cannot shed a rejection, and an event copied in from another run counts for nothing.

The approval binds to the audited *content*: the sha256 of ``report.json`` and of every
adapter file (plus the suite copy, model card and manifest). ``report.html`` is a rendering
of ``report.json`` whose banner shows the current state, so it is rebuilt by
``auditft report`` and is deliberately not part of the bound set.
"""

from __future__ import annotations

import fcntl
import json
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from auditft import identity
from auditft.errors import IntegrityError, RefusedError, RunDirError
from auditft.fsutil import atomic_write_text
from auditft.ledger import CLOCK_SKEW, Ledger, content_hash, now_iso, parse_iso, serialise, split_lines
from auditft.manifest import symlinks
from auditft.rundir import ledger_for, read_state

EVENTS_FILE = "events.jsonl"
#: renderings, scratch and bookkeeping: not part of what an approval binds to
UNBOUND = ("report.html", "state.json", EVENTS_FILE, "error.txt", ".lock")
REVIEWER_EVENTS = ("approved", "rejected", "waived")
#: what each decision means, shown beside the printed name (21 CFR 11.50)
MEANING = {"approved": "approved for release", "rejected": "rejected", "waived": "accepted a failing check",
           "released": "released"}


def utcnow() -> datetime:
    from auditft import ledger

    return ledger.utcnow()


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
    completing a run record that a crash left one event behind the ledger."""
    run_dir = Path(run_dir).resolve()
    read_state(run_dir)  # a directory that is not a run is refused before anything is written to it
    with open(run_dir / ".lock", "a+") as handle:
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
    #: a ``release_intent`` with neither ``released`` nor ``release_abandoned`` after it
    pending_release: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.report["run_id"])

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
        """Unexpired approvals, one per reviewer (compared as ``identity.same_person``).
        Expiry counts from ``at``, the time inside the (signed) payload, so re-appending an
        old signed approval does not refresh it; one dated in the future of ``now`` is not
        live (a clock set ahead cannot make an approval last)."""
        expires = timedelta(seconds=self.policy["approval_expires_seconds"])
        live: dict[str, dict[str, Any]] = {}
        for approval in self.approvals:
            at = parse_iso(approval.get("at", approval["time"]))
            if at > now + CLOCK_SKEW or parse_iso(approval["time"]) > now + CLOCK_SKEW:
                continue
            if at + expires > now:
                live.setdefault(identity.key(approval["actor"]), approval)
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
        if self.pending_release:
            needs.append(f"an interrupted release to be reconciled (seq {self.pending_release.get('seq')}: run "
                         "`auditft release` again)")
        if self.unwaived():
            needs.append(f"checks fixed or waived: {', '.join(self.unwaived())}")
        missing = self.policy["approvals_required"] - len(self.live_approvals(now))
        if missing > 0:
            needs.append(f"{missing} more approval{'s' if missing > 1 else ''}")
        if now < self.window_ends():
            needs.append(f"the review window (ends {self.window_ends():%Y-%m-%d %H:%M:%S} UTC)")
        return "; ".join(needs) if needs else "`auditft release`"


def _check_identity(run_dir: Path, report: dict[str, Any], ledger_events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``gated`` event that binds this folder's content, or ``IntegrityError``."""
    from auditft.data import sha256_file

    run_id = str(report.get("run_id"))
    if run_dir.name != run_id:
        raise IntegrityError(f"{run_dir}: the folder is named {run_dir.name!r} but holds run {run_id!r} (renamed or "
                             "copied); a run is reviewed and released only under its own name")
    gated = next((e for e in ledger_events if e.get("type") == "gated"), None)
    if gated is None:
        raise IntegrityError(f"{ledger_for(run_dir).path}: no 'gated' event for run {run_id!r}; the ledger beside "
                             "this folder has no record of it (moved or copied from another reports directory?)")
    if sha256_file(run_dir / "report.json") != gated.get("report_sha256"):
        raise IntegrityError(f"{run_dir / 'report.json'}: bytes changed since the gate")
    return gated


def load_review(run_dir: Path) -> Review:
    run_dir = Path(run_dir).resolve()
    state = read_state(run_dir)
    if state.get("phase") != "complete" or not (run_dir / "report.json").exists():
        raise RunDirError(f"{run_dir}: the run is not complete (phase {state.get('phase')!r}); "
                          "nothing to review")
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    theirs = ledger_for(run_dir).events(str(report.get("run_id")))
    gated = _check_identity(run_dir, report, theirs)
    # only events bound to this report count (an event of another report is verify's to flag)
    events = [e for e in theirs if e.get("type") not in REVIEWER_EVENTS
              or e.get("report_sha256") == gated["report_sha256"]]
    review = Review(run_dir, report, events, gated)
    for event in events:
        kind = event.get("type")
        if kind == "approved":
            review.approvals.append(event)
        elif kind == "rejected":
            review.rejections.append(event)
        elif kind == "waived" and isinstance(event.get("check"), str):
            review.waivers.setdefault(event["check"], event)
        elif kind == "release_intent":
            review.pending_release = event
        elif kind in ("released", "release_abandoned"):
            review.pending_release = None
            if kind == "released":
                review.released = event
    return review


def signature_trusted(review: Review, event: dict[str, Any]) -> bool:
    """Whether ``event`` is signed by the key the trust store holds for its actor."""
    from auditft import trust
    from auditft.signing import verify_signature

    if not event.get("signature"):
        return False
    expected = trust.trusted_key(review.run_dir.parent, str(event.get("actor", "")))
    return expected is not None and verify_signature(event, expected)


# -- integrity -------------------------------------------------------------------------------


def integrity_problems(run_dir: Path, ledger: Ledger | None = None) -> list[str]:
    """Everything ``verify`` checks, as one-line problems (empty when intact)."""
    run_dir = Path(run_dir).resolve()
    ledger = ledger or ledger_for(run_dir)
    now = utcnow()
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
    from auditft import timestamping

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
    from auditft import trust
    from auditft.signing import verify_signature

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


# -- actions ---------------------------------------------------------------------------------


def _reviewer_event(review: Review, kind: str, reviewer: str, key: Path | None, when: datetime | None = None,
                    **fields: Any) -> dict[str, Any]:
    from auditft import trust
    from auditft.signing import public_key_of, sign

    event = {"type": kind, "run_id": review.run_id, "actor": reviewer, "at": now_iso(when),
             "meaning": MEANING[kind], **fields}
    listed = {identity.key(name) for name in review.policy.get("reviewer_keys", {})}
    trusted = trust.trusted_key(review.run_dir.parent, reviewer)
    if trusted is not None or identity.key(reviewer) in listed:
        if key is None:
            raise RefusedError(f"reviewer {reviewer!r} has a trusted public key: sign with --key")
        if trusted is None:
            raise RefusedError(f"reviewer {reviewer!r} is listed in the release policy but has no key in the trust "
                               f"store {trust.store_path(review.run_dir.parent)}")
        if public_key_of(key) != trusted:
            raise RefusedError(f"{key}: not the key the trust store holds for reviewer {reviewer!r}")
    elif review.policy.get("require_signatures"):
        raise RefusedError(f"the release policy requires signatures and the trust store has no key for {reviewer!r}")
    if key is not None:
        event["signature"] = sign(event, key)
    return event


def approve(run_dir: Path, reviewer: str, comment: str, *, key: Path | None = None,
            when: datetime | None = None) -> dict[str, Any]:
    reviewer, comment = identity.person(reviewer, "--reviewer"), identity.words(comment, "--comment")
    now = when or utcnow()
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        _refuse_if_closed(review)
        if review.unwaived():
            raise RefusedError(f"the gate blocked this run and these checks are neither passed nor waived: "
                               f"{', '.join(review.unwaived())}")
        if review.policy["four_eyes"] and identity.same_person(reviewer, review.author):
            raise RefusedError(f"four-eyes policy: {reviewer!r} ran this job and may not approve it")
        if any(identity.same_person(a["actor"], reviewer) for a in review.live_approvals(now)):
            raise RefusedError(f"{reviewer!r} has already approved this run")
        event = _reviewer_event(review, "approved", reviewer, key, now, comment=comment,
                                report_sha256=review.gated["report_sha256"],
                                artefacts=bound_artefacts(review.run_dir))
        return record(review.run_dir, event, when=now)


def reject(run_dir: Path, reviewer: str, comment: str, *, key: Path | None = None,
           when: datetime | None = None) -> dict[str, Any]:
    reviewer, comment = identity.person(reviewer, "--reviewer"), identity.words(comment, "--comment")
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        if review.released:
            raise RefusedError("this run was already released; a rejection cannot recall it")
        event = _reviewer_event(review, "rejected", reviewer, key, when, comment=comment,
                                report_sha256=review.gated["report_sha256"])
        return record(review.run_dir, event, when=when)


def waive(run_dir: Path, check: str, reviewer: str, reason: str, *, key: Path | None = None,
          when: datetime | None = None) -> dict[str, Any]:
    reviewer, reason = identity.person(reviewer, "--reviewer"), identity.words(reason, "--reason")
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        _refuse_if_closed(review)
        ids = {check_id(c): c for c in review.report["checks"]}
        matches = [cid for cid in ids if cid == check or cid.split(":", 1)[1] == check]
        if not matches:
            raise RefusedError(f"no check {identity.printable(check)!r} in this run (checks: {', '.join(ids)})")
        if len(matches) > 1:
            raise RefusedError(f"{check!r} is ambiguous: name it as one of {', '.join(matches)}")
        target = ids[matches[0]]
        if target["status"] == "pass":
            raise RefusedError(f"check {matches[0]} passed; there is nothing to waive")
        if matches[0] in review.waivers:
            raise RefusedError(f"check {matches[0]} is already waived by {review.waivers[matches[0]]['actor']!r}")
        if review.policy["four_eyes"] and identity.same_person(reviewer, review.author):
            raise RefusedError(f"four-eyes policy: {reviewer!r} ran this job and may not waive its checks")
        event = _reviewer_event(review, "waived", reviewer, key, when, check=matches[0], reason=reason,
                                status=target["status"], report_sha256=review.gated["report_sha256"])
        return record(review.run_dir, event, when=when)


def _refuse_if_closed(review: Review) -> None:
    if review.released:
        raise RefusedError("this run was already released")
    if review.pending_release:
        raise RefusedError("a release of this run was interrupted; run `auditft release` again to reconcile it first")
    if review.rejections:
        who = review.rejections[-1]["actor"]
        raise RefusedError(f"rejected by {who!r}: a rejected run cannot be approved or waived; re-run it")
