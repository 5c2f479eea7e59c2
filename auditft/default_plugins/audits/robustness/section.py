"""The ``robustness`` audit's report section: the per-family table, identity flips per group and
the worst examples, rendered from ``report.json`` alone (the HTML is ``section.j2``)."""

from __future__ import annotations

from typing import Any

from auditft import hookimpl
from auditft.default_plugins.audits.robustness.metrics import METRIC_DIRECTIONS
from auditft.default_plugins.audits.robustness.perturbations import FAMILIES
from auditft.records import ReportSection

#: what each family does, for the table
FAMILY_TEXT = {
    "char_noise": "typos: letters swapped, dropped or doubled, case, whitespace, punctuation",
    "word_edits": "meaning kept: abbreviations, contractions, number formats",
    "identity_swap": "names, pronouns, ethnicity terms, group values swapped across groups",
}


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template
    from auditft.report.charts import bar_chart

    result = audit_result(report, "robustness")
    if result is None:
        return []
    metrics = result["metrics"]
    ev = result["evidence"]
    generation = ev.get("task") == "generation"
    columns = ["consistency", "accuracy", "accuracy_drop"] if generation else ["flip_rate", "accuracy", "accuracy_drop"]
    families = [f for f in ev.get("families", FAMILIES) if f"{columns[0]}_{f}" in metrics]
    head = columns[0]
    rows = [{"label": f, "value": metrics[f"{head}_{f}"]["value"], "ci_low": metrics[f"{head}_{f}"].get("ci_low"),
             "ci_high": metrics[f"{head}_{f}"].get("ci_high"), "base": metrics[f"{head}_{f}"].get("base_value"),
             "note": f"n={metrics[f'{head}_{f}'].get('n')}"} for f in families]
    chart = bar_chart(rows, f"{head.replace('_', ' ')} by family", lo=0.0, hi=1.0) if rows else None
    html = render_template(__name__, "section.j2", ev=ev, notes=result.get("notes", []), metrics=metrics,
                           families=families, columns=columns, family_text=FAMILY_TEXT,
                           directions=METRIC_DIRECTIONS, chart=chart, generation=generation)
    return [ReportSection(title="Robustness", html=html, anchor="audit-robustness", order=50)]
