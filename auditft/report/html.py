"""Render ``report.html`` from ``report.json`` plus the plugins' report sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft.errors import PluginError
from auditft.records import ReportSection
from auditft.report import environment
from auditft.report.charts import line_chart

if TYPE_CHECKING:
    from auditft.plugins import PluginManager

BANNERS = {
    "blocked": ("BLOCKED", "The gate blocked this adapter: it cannot be approved until every failing check is fixed or waived."),
    "awaiting_review": ("AWAITING REVIEW", "Every check passed. The adapter stays in quarantine until reviewers approve it."),
    "approved": ("APPROVED", "Approved by reviewers; release is possible once the review window has ended."),
    "rejected": ("REJECTED", "A reviewer rejected this adapter. It will not be released."),
    "released": ("RELEASED", "The approved bytes were released."),
}


def sections_for(report: dict[str, Any], pm: PluginManager) -> list[ReportSection]:
    from auditft.report.validity import validity_section

    core = validity_section(report)  # core's own section, never a plugin's
    sections: list[ReportSection] = [core] if core else []
    for impl in pm.hook.auditft_report_sections.get_hookimpls():
        try:
            produced: Any = impl.function(report=report) or []  # checked section by section below
        except Exception as exc:  # a broken section must not lose the report
            sections.append(ReportSection(title=f"Section from {impl.plugin_name} failed",
                                          html=f"{type(exc).__name__}: {exc}", order=999))
            continue
        for section in produced:
            if not isinstance(section, ReportSection):
                raise PluginError(f"plugin {impl.plugin_name!r}: auditft_report_sections must return "
                                  f"ReportSection objects, got {type(section).__name__}")
            sections.append(section)
    return sorted(sections, key=lambda s: (s.order, s.title))


def render_html(report: dict[str, Any], pm: PluginManager, *, state: str | None = None,
                review: dict[str, Any] | None = None) -> str:
    state = state or report["state"]
    title, explanation = BANNERS.get(state, (state.upper(), ""))
    tuner = report["tuner"]
    loss = line_chart(
        [{"name": "train loss", "points": tuner["loss_curve"], "color": "#2255aa"},
         {"name": "validation loss", "points": tuner["facts"].get("eval_loss_curve", []), "color": "#c2410c"}],
        "loss curve",
    )
    counts = {s: sum(1 for c in report["checks"] if c["status"] == s) for s in ("pass", "fail", "insufficient", "error")}
    return environment().get_template("report.html.j2").render(
        r=report, state=state, banner=title, explanation=explanation, sections=sections_for(report, pm),
        loss_chart=loss, counts=counts, review=review or {},
        health=(report.get("validity") or {}).get("training") or {},
    )
