"""The model card states each audit's headline finding (``evidence["summary"]``) as text."""

from __future__ import annotations

import json

from auditft.report.card import model_card


def test_each_audit_summary_is_a_line_of_the_card_and_cannot_become_markup(finished_run):
    _, run_dir = finished_run
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    kind = next(iter(report["audits"]))
    report["audits"][kind]["evidence"]["summary"] = "ECE 0.04 <script>alert(1)</script>\non 120 rows"
    card = model_card(report)
    assert "## Findings by audit" in card
    assert f"- **{kind}**: ECE 0.04 &lt;script&gt;alert(1)&lt;/script&gt; on 120 rows" in card
    assert "<script>" not in card


def test_a_card_without_summaries_has_no_findings_section(finished_run):
    _, run_dir = finished_run
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    for audit in report["audits"].values():
        if isinstance(audit.get("evidence"), dict):
            audit["evidence"].pop("summary", None)
    assert "## Findings by audit" not in model_card(report)
