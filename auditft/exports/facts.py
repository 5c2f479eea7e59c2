"""What every export carries of a run: its report, its review state from the ledger (never
from the report alone), who approved, and the ledger's last hash for the run, so a registry
entry can be traced back to the record it came from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditft.errors import RunDirError


@dataclass(frozen=True)
class RunFacts:
    run_dir: Path
    report: dict[str, Any]
    manifest: dict[str, Any]
    #: ``blocked`` | ``awaiting_review`` | ``approved`` | ``rejected`` | ``released``
    state: str
    approvers: list[str]
    rejected_by: list[str]
    #: ``<audit>:<metric> by <reviewer>`` for each waived check, sorted by check
    waivers: list[str]
    #: the sha256 chain hash of the run's last ledger event, and its sequence number
    ledger_hash: str | None
    ledger_seq: int | None
    released_to: str | None
    #: the run's bound artefacts (path -> sha256) as the gate recorded them
    artefacts: dict[str, str]

    @property
    def run_id(self) -> str:
        return str(self.report["run_id"])


def run_facts(run_dir: Path) -> RunFacts:
    """The facts of a finished run directory; integrity is checked first (exit 6 on a
    mismatch), so nothing is exported from bytes that differ from what the gate recorded."""
    from auditft.signoff.events import bound_artefacts
    from auditft.signoff.integrity import ensure_intact
    from auditft.signoff.layout import ledger_for
    from auditft.signoff.review import load_review

    run_dir = Path(run_dir).resolve()
    if not (run_dir / "report.json").is_file() or not (run_dir / "manifest.json").is_file():
        raise RunDirError(f"{run_dir}: not a finished run (no report.json and manifest.json)")
    ensure_intact(run_dir)
    review = load_review(run_dir)
    events = ledger_for(run_dir).events(review.run_id)
    last = events[-1] if events else {}
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return RunFacts(run_dir=run_dir, report=review.report, manifest=manifest, state=review.state(),
                    approvers=[a["actor"] for a in review.approvals], rejected_by=[r["actor"] for r in review.rejections],
                    waivers=[f"{check} by {event.get('actor', '?')}" for check, event in sorted(review.waivers.items())], ledger_hash=last.get("hash"), ledger_seq=last.get("seq"),
                    released_to=(review.released or {}).get("destination"), artefacts=bound_artefacts(run_dir))
