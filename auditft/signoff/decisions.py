"""Approve, reject, waive: what only people do. Each verifies the run first (exit 6 when
broken), then the policy (exit 4 with the reason), then appends one event under the run's lock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from auditft.errors import RefusedError
from auditft.signoff import clock, identity
from auditft.signoff.clock import now_iso
from auditft.signoff.events import bound_artefacts, check_id, record, run_lock
from auditft.signoff.integrity import ensure_intact
from auditft.signoff.review import MEANING, Review, load_review

def _reviewer_event(review: Review, kind: str, reviewer: str, key: Path | None, when: datetime | None = None,
                    **fields: Any) -> dict[str, Any]:
    from auditft.signoff import trust
    from auditft.signoff.signing import public_key_of, sign

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
    now = when or clock.utcnow()
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
        return _attested(review, record(review.run_dir, event, when=now), key)


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
        return _attested(review, record(review.run_dir, event, when=when), key)


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
        return _attested(review, record(review.run_dir, event, when=when), key)


def _attested(review: Review, event: dict[str, Any], key: Path | None) -> dict[str, Any]:
    """A signed decision is also written as DSSE in-toto attestations (``attestations``),
    verifiable without auditft; the ledger event stays the record."""
    if key is not None:
        from auditft.signoff.attestations import attest_decision

        attest_decision(review, event, key)
    return event


def _refuse_if_closed(review: Review) -> None:
    if review.released:
        raise RefusedError("this run was already released")
    if review.pending_release:
        raise RefusedError("a release of this run was interrupted; run `auditft release` again to reconcile it first")
    if review.rejections:
        who = review.rejections[-1]["actor"]
        raise RefusedError(f"rejected by {who!r}: a rejected run cannot be approved or waived; re-run it")
