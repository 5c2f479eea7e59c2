"""The ``retention`` audit's report section: the metric table, a per-category chart and table,
and the probes the base model answered correctly that the adapter now gets wrong, rendered from
``report.json`` alone (the HTML is ``section.j2`` beside this file)."""

from __future__ import annotations

from typing import Any

from auditft import hookimpl
from auditft.default_plugins.audits.retention.metrics import COMPONENTS, METRIC_DIRECTIONS
from auditft.records import ReportSection


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template
    from auditft.report.charts import bar_chart

    result = audit_result(report, "retention")
    if result is None:
        return []
    evidence = result.get("evidence") or {}
    rows = [{"label": row["category"], "value": row["adapter_accuracy"], "ci_low": None, "ci_high": None,
             "base": row["base_accuracy"], "note": f"n={row['n']}"} for row in evidence.get("categories", [])]
    chart = bar_chart(rows, "accuracy per probe category", lo=0.0, hi=1.0) if rows else ""
    html = render_template(__name__, "section.j2", ev=evidence, notes=result.get("notes", []),
                           metrics=result.get("metrics", {}), components=COMPONENTS, directions=METRIC_DIRECTIONS,
                           chart=chart)
    return [ReportSection(title="Retention", html=html, anchor="audit-retention", order=55)]
