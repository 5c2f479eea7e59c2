"""The review record of a run: its state computed from the ledger.

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

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError, RunDirError
from auditft.signoff import identity
from auditft.signoff.clock import CLOCK_SKEW, parse_iso
from auditft.signoff.events import check_id
from auditft.signoff.layout import ledger_for, read_state

REVIEWER_EVENTS = ("approved", "rejected", "waived")
#: what each decision means, shown beside the printed name (21 CFR 11.50)
MEANING = {"approved": "approved for release", "rejected": "rejected", "waived": "accepted a failing check",
           "released": "released"}


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
    from auditft.manifest import sha256_file

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
    from auditft.signoff import trust
    from auditft.signoff.signing import verify_signature

    if not event.get("signature"):
        return False
    expected = trust.trusted_key(review.run_dir.parent, str(event.get("actor", "")))
    return expected is not None and verify_signature(event, expected)
