"""Release: copy exactly the approved bytes out of quarantine, and record it.

Refused (exit 4) until approvals >= required (live, unexpired, bound to the current bytes),
no rejection stands, every non-passing check is waived and the review window has passed.
Refused (exit 6) when the ledger or any artefact no longer matches the record.

Release is intent, then commit: a ``release_intent`` event (with the destination and the
approved hashes) is recorded first; then the approved files alone are copied into a hidden
staging folder, re-hashed, completed with the record and the RELEASED rendering, and
renamed into place; then ``released`` is recorded. A failure before the rename records
``release_abandoned``. A kill after the rename leaves an intent without an outcome: ``verify``
and ``status`` say so, nothing else can be done to the run, and the next ``release``
reconciles it (records the folder as released when it holds exactly the approved bytes).
The folder is named from the run's bound identity, never from the path given. An existing
release is never overwritten.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import IntegrityError, RefusedError, RunDirError
from auditft.fsutil import atomic_write_text
from auditft.plugins import default_plugins
from auditft.signoff.rendering import rerender
from auditft.signoff import clock
from auditft.signoff.events import bound_artefacts, record, run_lock
from auditft.signoff.integrity import ensure_intact
from auditft.signoff.review import Review, load_review

if TYPE_CHECKING:
    from auditft.plugins import PluginManager

#: what leaves quarantine: the adapter, the evidence, and the sign-off record
SHIPPED = ("adapter", "report.json", "report.html", "model_card.md", "compliance.md", "manifest.json", "suite.yaml")
#: layouts of a released folder: ``auditft`` (the run's own paths) or ``hf``, a folder
#: ``huggingface_hub.upload_folder`` publishes unchanged (the adapter's files at the top, as
#: peft loads them, a Hub model card as README.md, auditft's evidence under ``auditft/``)
FORMATS = ("auditft", "hf")
#: what a release adds beside the approved bytes (never part of the approved set)
ADDED = ("report.html", "signoff.jsonl", "attestations", "model.sig", "README.md")


def released_path(rel: str, layout: str) -> str:
    """Where the approved file ``rel`` (a run-directory path) goes in a folder of ``layout``."""
    if layout != "hf":
        return rel
    if rel.startswith("adapter/") and rel != "adapter/README.md":  # the Hub card takes README.md
        return rel[len("adapter/"):]
    return f"auditft/{rel}"


def _shipped(approved: dict[str, str]) -> dict[str, str]:
    """The approved files a release copies (its report.html is rendered anew, RELEASED)."""
    return {rel: d for rel, d in approved.items() if rel.split("/")[0] in SHIPPED and rel != "report.html"}


def releasable(run_dir: Path, now: datetime) -> list[str]:
    """Reasons the run cannot be released yet (empty when it can)."""
    return _reasons(load_review(run_dir), bound_artefacts(run_dir), now)


def _reasons(review: Review, current: dict[str, str], now: datetime) -> list[str]:
    reasons = []
    if review.released:
        reasons.append(f"already released to {review.released.get('destination')}")
    if review.rejections:
        reasons.append(f"rejected by {review.rejections[-1]['actor']!r}")
    if review.unwaived():
        reasons.append(f"checks neither passed nor waived: {', '.join(review.unwaived())}")
    live = [a for a in review.live_approvals(now) if a.get("artefacts") == current]
    expired = len(review.approvals) - len(review.live_approvals(now))
    need = review.policy["approvals_required"]
    if len(live) < need:
        detail = f" ({expired} expired)" if expired else ""
        reasons.append(f"{len(live)} of {need} required approvals{detail}")
    if now < review.window_ends():
        remaining = review.window_ends() - now
        reasons.append(f"the review window ends {review.window_ends():%Y-%m-%d %H:%M:%S} UTC "
                       f"({human_duration(remaining.total_seconds())} from now)")
    return reasons


def release(run_dir: Path, to: Path, *, actor: str, when: datetime | None = None,
            plugins: PluginManager | None = None, layout: str = "auditft") -> Path:
    """Intent, copy, re-hash, rename, record: see the module docstring. Returns the folder.
    ``layout``: ``auditft`` (default) or ``hf`` (``FORMATS``).

    ``plugins`` renders the report's plugin sections: the calling command's manager (so
    ``--strict-plugins`` holds here too); without one, the installed plugins are loaded."""
    from auditft.signoff import identity

    actor = identity.person(actor, "--actor")
    run_dir = Path(run_dir).resolve()
    now = when or clock.utcnow()
    with run_lock(run_dir):
        review = load_review(run_dir)
        if review.pending_release is not None:
            return _reconcile(review, actor, now, plugins)
        ensure_intact(run_dir)
        reasons = _reasons(review, bound_artefacts(run_dir), now)
        if reasons:
            raise RefusedError("not releasable: " + "; ".join(reasons))
        target = Path(to).resolve()
        if target == run_dir or run_dir in target.parents:
            raise RunDirError(f"{to}: the release folder cannot be inside the run directory {run_dir}")
        # named from the bound identity, never from the path the command was given
        destination = target / review.report["suite"] / review.run_id
        if destination.exists():
            raise RefusedError(f"{destination}: a release already exists there; refusing to overwrite it")
        approved = review.live_approvals(now)[-1]["artefacts"]
        intent = record(run_dir, {"type": "release_intent", "run_id": review.run_id, "actor": actor,
                                  "destination": str(destination), "artefacts": approved, "format": layout},
                        when=now)
        refused = _window_by_tsa(review, intent)
        if refused:
            record(run_dir, {"type": "release_abandoned", "run_id": review.run_id, "actor": actor,
                             "destination": str(destination), "intent_seq": intent["seq"], "reason": refused})
            raise RefusedError(f"not releasable: {refused}")
        try:
            _build(review, run_dir, destination, approved, [*review.events, intent], now, plugins, layout)
        except BaseException:
            record(run_dir, {"type": "release_abandoned", "run_id": review.run_id, "actor": actor,
                             "destination": str(destination), "intent_seq": intent["seq"]})
            raise
        record(run_dir, {"type": "released", "run_id": review.run_id, "actor": actor,
                         "destination": str(destination), "artefacts": approved, "intent_seq": intent["seq"],
                         "format": layout}, when=now)
    rerender(run_dir, plugins=plugins)
    return destination


def _window_by_tsa(review: Review, intent: dict[str, Any]) -> str | None:
    """With a TSA configured, the review window is measured on its clock: from the gated
    event's token to the release intent's token. Returns why not, or None."""
    from datetime import timedelta

    from auditft.signoff import timestamping
    from auditft.signoff.layout import ledger_for

    if not timestamping.configured():
        return None
    ledger = ledger_for(review.run_dir).path
    gated, now = timestamping.token_time(ledger, review.gated), timestamping.token_time(ledger, intent)
    if gated is None or now is None:
        return "the gated or release event has no verified RFC 3161 timestamp"
    ends = gated + timedelta(seconds=review.policy["review_window_seconds"])
    if now < ends:
        return (f"by the time-stamping authority's clock the review window ends {ends:%Y-%m-%d %H:%M:%S} UTC "
                f"({human_duration((ends - now).total_seconds())} from its time {now:%Y-%m-%d %H:%M:%S})")
    return None


def _build(review: Review, run_dir: Path, destination: Path, approved: dict[str, str],
           record_events: list[dict[str, Any]], now: datetime, plugins: PluginManager | None,
           layout: str = "auditft") -> None:
    """The release folder, complete before it exists: copy exactly the approved files (bytes
    only: every file 0644, so no mode bit ships), re-hash, add the record, the RELEASED
    rendering, the signed attestations (and for ``hf`` the Hub card), sign the whole folder
    with the registry's release key (``model.sig``, sigstore model_signing), then rename."""
    import os

    from auditft.signoff.encoding import serialise
    from auditft.manifest import hash_tree
    from auditft.report.html import render_html
    from auditft.signoff.rendering import review_info

    staging = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files = _shipped(approved)
        shipped_set = {released_path(rel, layout): d for rel, d in files.items()}
        for rel in sorted(files):
            target = staging / released_path(rel, layout)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / rel, target, follow_symlinks=False)
            os.chmod(target, 0o644)
        if hash_tree(staging, hidden=True) != shipped_set:
            raise IntegrityError(f"{run_dir}: the release would not be exactly the approved bytes")
        evidence = staging / "auditft" if layout == "hf" else staging
        atomic_write_text(evidence / "signoff.jsonl", "".join(serialise(e) + "\n" for e in record_events))
        info = review_info(review, now)
        atomic_write_text(evidence / "report.html", render_html(
            review.report, plugins or default_plugins(), state="released", review=info))
        _add_attestations(review, evidence / "attestations")
        if layout == "hf":
            from auditft.report.hub_card import hub_card

            atomic_write_text(staging / "README.md", hub_card(review.report, info, record_events))
        from auditft.signoff.release_signing import sign_folder

        sign_folder(staging, run_dir.parent)  # last: it covers every file above
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _reconcile(review: Review, actor: str, now: datetime, plugins: PluginManager | None) -> Path:
    """Finish the record of a release that was interrupted: a folder holding exactly the
    approved bytes is recorded as released; no folder is recorded as abandoned (and a new
    release can then be made); anything else is an integrity failure, left for a person."""
    from auditft.manifest import hash_tree
    from auditft.signoff.integrity import integrity_problems

    # everything else must be intact; the missing outcome is what this call supplies
    problems = [p for p in integrity_problems(review.run_dir) if "has no outcome" not in p]
    if problems:
        raise IntegrityError(problems[0])
    intent = review.pending_release
    assert intent is not None  # release() reconciles only a pending release
    destination = Path(intent["destination"])
    layout = intent.get("format") or "auditft"
    shipped = {released_path(rel, layout): d for rel, d in _shipped(intent["artefacts"]).items()}
    fields = {"run_id": review.run_id, "actor": actor, "destination": str(destination), "intent_seq": intent["seq"]}
    if destination.is_dir():
        prefix = "auditft/" if layout == "hf" else ""
        found = {rel: d for rel, d in hash_tree(destination, hidden=True).items()
                 if rel.removeprefix(prefix).split("/")[0] not in ADDED and rel.split("/")[0] not in ADDED}
        if found != shipped:
            raise IntegrityError(f"{destination}: an interrupted release left a folder that is not exactly the "
                                 "approved bytes; inspect it (nothing was recorded)")
        record(review.run_dir, {"type": "released", **fields, "artefacts": intent["artefacts"], "reconciled": True},
               when=now)
        rerender(review.run_dir, plugins=plugins)
        return destination
    shutil.rmtree(destination.with_name(f".{destination.name}.partial"), ignore_errors=True)
    record(review.run_dir, {"type": "release_abandoned", **fields}, when=now)
    raise RefusedError(f"an interrupted release to {destination} never completed; recorded it as abandoned. "
                       "Run `auditft release` again to release")


def _add_attestations(review: Review, target: Path) -> None:
    """The run's signed DSSE attestations (``signoff.attestations``) and the reviewers' public
    keys as the trust store holds them, so anyone can verify them without auditft."""
    import json

    from auditft.signoff.attestations import folder_for, public_keys

    source = folder_for(review.run_dir.parent, review.run_id)
    if not source.is_dir():
        return  # no decision was signed with --key: nothing to attest
    target.mkdir(parents=True)
    for path in sorted(source.glob("*.dsse.json")):
        shutil.copyfile(path, target / path.name)
    signers = sorted({e["actor"] for e in review.events if e.get("signature")})
    atomic_write_text(target / "keys.json", json.dumps(public_keys(signers, review.run_dir.parent), indent=2) + "\n")


def human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{seconds}s"


def describe(run_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    review = load_review(run_dir)
    now = now or clock.utcnow()
    return {"state": review.state(), "waiting_for": review.waiting_for(now),
            "approvals": [a["actor"] for a in review.live_approvals(now)],
            "window_ends": review.window_ends().strftime("%Y-%m-%dT%H:%M:%SZ")}
