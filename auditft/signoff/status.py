"""Where a run stands, for ``auditft status`` and the workspace: its phase, and for a
finished run the review state computed from the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditft.signoff.layout import read_state


def run_status(run_dir: Path) -> dict[str, Any]:
    """Where a run stands: its phase, and for finished runs the review state from the ledger."""
    state = read_state(run_dir)
    run_id = state.get("run_id", Path(run_dir).name)
    info: dict[str, Any] = {"run_id": run_id, "run_dir": str(run_dir), "phase": state["phase"],
                            "suite": state.get("suite"), "author": state.get("author"),
                            "created_at": state.get("created_at")}
    if state["phase"] != "complete" or not (Path(run_dir) / "manifest.json").exists():
        info["state"] = "failed" if state["phase"] == "failed" else "incomplete"
        info["waiting_for"] = state.get("error") or f"run stopped during {state['phase']}"
        return info
    from auditft.errors import AuditftError
    from auditft.signoff import clock
    from auditft.signoff.review import load_review

    info["verdict"] = state.get("verdict")
    try:
        review = load_review(run_dir)
    except AuditftError as exc:  # one tampered run must not hide the state of the others
        info["state"] = "integrity_failure"
        info["waiting_for"] = f"a person: {exc} (run `auditft verify`)"
        return info
    info["state"] = review.state()
    info["waiting_for"] = review.waiting_for(clock.utcnow())
    info["approvals"] = [a["actor"] for a in review.approvals]
    return info
