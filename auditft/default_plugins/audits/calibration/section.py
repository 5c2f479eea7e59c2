"""The ``calibration`` audit's report section: the metric table, the reliability diagram
(inline SVG from ``reliability.j2``, autoescaped), the bins, the groups, the temperature
what-if and the most confidently wrong rows, rendered from ``report.json`` alone."""

from __future__ import annotations

from typing import Any

from auditft import hookimpl
from auditft.default_plugins.audits.calibration.metrics import FIGURES, METRIC_DIRECTIONS
from auditft.records import ReportSection

#: the metric table's rows and what each measures
ROWS = [("ece", "expected calibration error, equal-width bins"),
        ("ece_equal_mass", "expected calibration error, equal-count bins"),
        ("mce", "largest bin gap |accuracy - confidence|"),
        ("brier", "Brier score (sum over classes, not / K)"),
        ("overconfidence", "mean confidence - accuracy (negative: underconfident)"),
        ("ece_max_group", "worst group's ECE"),
        ("ece_after_temperature", "ECE after temperature scaling (what-if)")]
#: plot geometry of the reliability diagram (pixels)
SIZE, PAD = 260, 40
COLORS = {"adapter": "#1f5fa8", "base": "#9a9a9a"}


def reliability_svg(bin_table: dict[str, list[dict[str, Any]]]) -> Any:
    """Accuracy against mean confidence per non-empty bin, adapter and base, over the diagonal
    (perfect calibration); the adapter's bars show its accuracy per bin."""
    from auditft.report import render_template

    def x(v: float) -> float:
        return round(PAD + v * SIZE, 1)

    def y(v: float) -> float:
        return round(10 + (1 - v) * SIZE, 1)

    series = []
    for which in ("base", "adapter"):
        rows = [r for r in bin_table.get(which, []) if r.get("count")]
        series.append({"name": which, "color": COLORS[which],
                       "points": " ".join(f"{x(r['confidence'])},{y(r['accuracy'])}" for r in rows),
                       "dots": [(x(r["confidence"]), y(r["accuracy"])) for r in rows]})
    bars = [{"x": x(r["low"]), "w": round((r["high"] - r["low"]) * SIZE - 1, 1), "y": y(r["accuracy"]),
             "h": round(r["accuracy"] * SIZE, 1), "count": r["count"]}
            for r in bin_table.get("adapter", []) if r.get("count")]
    ticks = [(x(t / 5), y(t / 5), f"{t / 5:.1f}") for t in range(6)]
    return render_template(__name__, "reliability.j2", series=series, bars=bars, ticks=ticks, pad=PAD, size=SIZE,
                           w=PAD + SIZE + 20, h=SIZE + 10 + PAD, x0=x(0), x1=x(1), y0=y(0), y1=y(1))


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template

    result = audit_result(report, "calibration")
    if result is None:
        return []
    ev = result["evidence"]
    chart = reliability_svg(ev["bin_table"]) if ev.get("bin_table") else None
    html = render_template(__name__, "section.j2", ev=ev, notes=result.get("notes", []), metrics=result["metrics"],
                           rows=ROWS, directions=METRIC_DIRECTIONS, figures=FIGURES, chart=chart)
    return [ReportSection(title="Calibration", html=html, anchor="audit-calibration", order=45)]
