"""The ``hallucination`` audit's report section: the component table, a chart and the worst
examples, rendered from ``report.json`` alone (the HTML is ``section.j2`` beside this file)."""

from __future__ import annotations

from typing import Any

from auditft import hookimpl
from auditft.default_plugins.audits.hallucination.metrics import COMPONENTS, GATE_METRICS
from auditft.records import ReportSection

#: the chart's bars, in order
CHART_ROWS = ["hallucination_rate", "invented_answer_rate", "answerable_accuracy", "unsupported_content_rate",
              "self_consistency", "abstention_rate"]


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template
    from auditft.report.charts import bar_chart

    result = audit_result(report, "hallucination")
    if result is None:
        return []
    metrics = result["metrics"]
    rows = [{"label": name, "value": metrics[name]["value"], "ci_low": metrics[name].get("ci_low"),
             "ci_high": metrics[name].get("ci_high"), "base": metrics[name].get("base_value"),
             "note": "(lower better)" if GATE_METRICS[name] == "lower" else "(higher better)"}
            for name in CHART_ROWS if name in metrics]
    chart = bar_chart(rows, "hallucination components", lo=0.0, hi=1.0)
    html = render_template(__name__, "section.j2", ev=result["evidence"], notes=result.get("notes", []),
                           metrics=metrics, components=COMPONENTS, directions=GATE_METRICS, chart=chart)
    return [ReportSection(title="Hallucination", html=html, anchor="audit-hallucination", order=35)]
