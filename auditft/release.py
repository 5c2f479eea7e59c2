"""Release: copy exactly the approved bytes out of quarantine, and record it.

Refused (exit 4) until approvals >= required (live, unexpired, bound to the current bytes),
no rejection stands, every non-passing check is waived and the review window has passed.
Refused (exit 6) when the ledger or any artefact no longer matches the record. The copy is
made into a temporary directory, re-hashed, then renamed into place, so a release
directory either holds the complete approved set or does not exist. An existing release is
never overwritten.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError, RefusedError, RunDirError
from auditft.fsutil import atomic_write_text
from auditft.signoff import bound_artefacts, ensure_intact, load_review, record, run_lock, utcnow

#: what leaves quarantine: the adapter, the evidence, and the sign-off record
SHIPPED = ("adapter", "report.json", "report.html", "model_card.md", "manifest.json", "suite.yaml")


def releasable(run_dir: Path, now: datetime) -> list[str]:
    """Reasons the run cannot be released yet (empty when it can)."""
    return _reasons(load_review(run_dir), bound_artefacts(run_dir), now)


def _reasons(review: Any, current: dict[str, str], now: datetime) -> list[str]:
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
                       f"({_human(remaining.total_seconds())} from now)")
    return reasons


def release(run_dir: Path, to: Path, *, actor: str, when: datetime | None = None) -> Path:
    from auditft.manifest import hash_tree
    from auditft.report.html import render_html
    from auditft.report.rerender import review_info, rerender

    run_dir = Path(run_dir)
    now = when or utcnow()
    with run_lock(run_dir):
        review = load_review(run_dir)
        ensure_intact(run_dir)
        reasons = _reasons(review, bound_artefacts(run_dir), now)
        if reasons:
            raise RefusedError("not releasable: " + "; ".join(reasons))
        destination = Path(to) / review.report["suite"] / run_dir.name
        if destination.exists():
            raise RefusedError(f"{destination}: a release already exists there; refusing to overwrite it")
        if destination.resolve().parent.parent != Path(to).resolve():
            raise RunDirError(f"{destination}: escapes the release directory")
        approved = review.live_approvals(now)[-1]["artefacts"]
        staging = destination.with_name(f".{destination.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            for name in SHIPPED:
                source = run_dir / name
                if source.is_dir():
                    shutil.copytree(source, staging / name, symlinks=True)
                elif source.exists():
                    shutil.copy2(source, staging / name, follow_symlinks=False)
            # exactly the approved files, byte for byte: nothing missing, changed or added
            shipped = {rel: d for rel, d in hash_tree(staging, hidden=True).items() if rel != "report.html"}
            expected = {rel: d for rel, d in approved.items() if rel.split("/")[0] in SHIPPED}
            if shipped != expected:
                odd = sorted(set(shipped.items()) ^ set(expected.items()))[0][0]
                raise IntegrityError(f"{run_dir / odd}: the release would not be exactly the approved bytes")
            # the record and an HTML whose banner says RELEASED go in before the rename, so the
            # release folder is complete the moment it exists
            event = {"type": "released", "run_id": run_dir.name, "actor": actor,
                     "destination": str(destination.resolve()), "artefacts": approved}
            atomic_write_text(staging / "signoff.jsonl", "".join(
                json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in [*review.events, event]))
            atomic_write_text(staging / "report.html", render_html(
                review.report, _plugins(), state="released", review=review_info(review, now)))
            staging.rename(destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        record(run_dir, event, when=now)
        rerender(run_dir)
        return destination


def _plugins() -> object:
    from auditft.plugins import make_plugin_manager

    return make_plugin_manager()


def _human(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{seconds}s"


def describe(run_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    review = load_review(run_dir)
    now = now or utcnow()
    return {"state": review.state(), "waiting_for": review.waiting_for(now),
            "approvals": [a["actor"] for a in review.live_approvals(now)],
            "window_ends": review.window_ends().strftime("%Y-%m-%dT%H:%M:%SZ")}
