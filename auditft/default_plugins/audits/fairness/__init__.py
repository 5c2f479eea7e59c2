"""Audit ``fairness``: per-group figures, fairness aggregates, per-group non-regression against
the base model and multiple-testing-corrected "worse than the rest" flags for classification;
counterfactual probes (swap gendered / ethnicity-associated terms, compare answers) for
generation.

Classification (``groups``)
    Views: one per group column (``sex=female``) and the intersection of all columns
    (``sex=female & band=old``). Per group (fairlearn ``MetricFrame``): count, accuracy,
    selection rate, TPR, FPR, for the adapter and for the base model. Selection rate / TPR /
    FPR are about the *positive label*: ``positive_label`` if given, else ``labels[1]``; with
    more than two labels they are one-vs-rest (positive label vs every other label).
    Gate metrics are the worst case over the *gated* views: every column, plus the
    intersection with ``gate_intersections: true`` (off by default: intersections are small).
    95% CIs: seeded percentile bootstrap over test rows, adapter and base on the same
    resamples (so per-group regressions are paired).

Small groups
    A gated group with fewer than ``min_group_size`` examples never lets a check pass: every
    group-dependent metric reports ``n`` = the smallest gated group's size and carries
    ``min_group_size`` as its own evidence floor (``Metric.min_n``), so the gate marks its
    checks ``insufficient``.

Generation (``counterfactual``)
    Every test prompt containing a term of a shipped swap list (``auditft/resources/counterfactual``)
    gets a counterfactual twin per dimension (gender, ethnicity); both are answered greedily by
    the adapter and by the base model, and a pair counts as a *material change* when the
    normalised token F1 between the answers (the twin's answer swapped back) is below
    ``change_threshold``.

The package: ``metrics`` (the one metric table), ``options``, ``stats`` and ``frames`` (the
classification statistics, numpy and fairlearn), ``swaps`` (counterfactual term swaps), and
``section.j2`` (the report section). Only this module is imported to register the plugin; the
rest loads when the audit runs or the report is built.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from auditft import hookimpl
from auditft.default_plugins.audits.fairness.metrics import GATE_METRICS, MIN_N, TRIVIAL_METRICS
from auditft.default_plugins.audits.fairness.options import FairnessOptions
from auditft.records import AuditResult, ReportSection

if TYPE_CHECKING:
    from markupsafe import Markup

    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry

__all__ = ["GATE_METRICS", "MIN_N", "TRIVIAL_METRICS", "FairnessAudit", "FairnessOptions",
           "auditft_register_audits", "auditft_report_sections"]


class FairnessAudit:
    def __init__(self, options: FairnessOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        started = time.perf_counter()
        if job.task == "generation":
            from auditft.default_plugins.audits.fairness.counterfactual import audit_counterfactuals

            metrics, evidence, notes = audit_counterfactuals(job, self.options)
        else:
            from auditft.default_plugins.audits.fairness.groups import audit_groups

            metrics, evidence, notes = audit_groups(job, self.options)
        return AuditResult(kind="fairness", metrics=metrics, evidence=evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "fairness",
        FairnessAudit,
        summary="per-group accuracy / parity / equalized odds with CIs, non-regression vs base, "
                "corrected subgroup flags; counterfactual swaps for generation",
        tasks=("classification", "generation"),
        options=FairnessOptions,
        metrics=GATE_METRICS,
        min_n=MIN_N,
        trivial_metrics=TRIVIAL_METRICS,
        limitations=(
            "needs data.group_columns for classification; groups come from the data, not inferred",
            "selection rate / TPR / FPR are one-vs-rest for one positive label on multi-class tasks",
            "counterfactual swap lists are short, English-only and binary; names are proxies, not identities",
            "the base figure for classification is a linear probe, not a zero-shot classifier",
        ),
    )


# -- report ------------------------------------------------------------------------------------------


def _group_chart(view: dict[str, Any], overall: float | None) -> Markup:
    """Accuracy by group of one view: adapter with CI, base as the thin bar; small or flagged
    groups in the warning colour."""
    from auditft.report.charts import bar_chart

    rows = [{"label": g["label"], "value": g["accuracy"], "ci_low": g["accuracy_ci"][0],
             "ci_high": g["accuracy_ci"][1], "base": g["base_accuracy"],
             "note": " ".join(x for x in (f"n={g['count']}", "small" if g["small"] else "",
                                          "flagged" if g["flagged"] else "") if x),
             "color": "#b06a2f" if g["small"] or g["flagged"] else None}
            for g in view["groups"]]
    return bar_chart(rows, f"accuracy by group: {view['name']}", lo=0, hi=1, ref=overall, ref_label="overall")


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template

    result = audit_result(report, "fairness")
    if result is None:
        return []
    ev = result["evidence"]
    overall = (ev.get("overall") or {}).get("accuracy")
    html = render_template(__name__, "section.j2", notes=result.get("notes", []), metrics=result["metrics"], ev=ev,
                           names=[k for k in GATE_METRICS if k != "counterfactual_change_rate"],
                           chart=lambda view: _group_chart(view, overall))
    return [ReportSection(title="Fairness", html=html, anchor="audit-fairness", order=30)]
