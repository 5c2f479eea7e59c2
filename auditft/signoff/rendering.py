"""Rendering a run as sign-off sees it: ``report.html`` rebuilt from ``report.json`` and the
ledger (``auditft report RUN_DIR``, and after every decision and release).

The banner and the sign-off record show the state as of rendering; the numbers come only
from ``report.json``, whose sha256 is what approvals bind to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.fsutil import atomic_write_text

if TYPE_CHECKING:
    from datetime import datetime

    from auditft.plugins import PluginManager
    from auditft.signoff.review import Review


def review_info(review: Review, now: datetime) -> dict[str, Any]:
    """What the sign-off block and the banner show of the review record."""
    from auditft.signoff.review import MEANING, signature_trusted

    return {
        # each decision with what it means (21 CFR 11.50) and whether a trusted key signed it
        "events": [{**e, "meaning": MEANING.get(e["type"], e["type"]), "signed": signature_trusted(review, e)}
                   for e in review.events if e.get("type") in ("approved", "rejected", "waived", "released")],
        "waivers": review.waivers,
        "approvals": [a["actor"] for a in review.live_approvals(now)],
        "waiting_for": review.waiting_for(now),
        "window_ends": review.window_ends().strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def rerender(run_dir: Path, *, state: str | None = None, plugins: PluginManager | None = None) -> Path:
    """Rebuild ``report.html``. ``plugins`` renders the plugin sections: the calling command's
    manager (so ``--strict-plugins`` holds here too); without one, the installed plugins."""
    from auditft.plugins import default_plugins
    from auditft.report.html import render_html
    from auditft.signoff import clock
    from auditft.signoff.review import load_review

    from auditft.signoff.events import run_lock

    path = Path(run_dir) / "report.html"
    # under the run's lock: the rendering's temporary file must not appear in the middle of
    # another process's integrity check (it would be "a file not recorded at the gate")
    with run_lock(run_dir):
        review = load_review(run_dir)
        html = render_html(review.report, plugins or default_plugins(), state=state or review.state(),
                           review=review_info(review, clock.utcnow()))
        atomic_write_text(path, html)
    return path
