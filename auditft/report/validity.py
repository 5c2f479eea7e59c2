"""The report's "Model validity" section: core's degeneracy findings (``report.json`` key
``validity`` and each audit's ``scored_models``), rendered from the JSON alone. The HTML is
``templates/validity_section.j2``, in the report's own template folder."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from auditft.records import ReportSection

#: what the report says about the statistics behind every check (``auditft.stats``, ``auditft.gate``)
STATISTICS_NOTE = (
    "Shares (accuracy, exact match, hallucination rates) over fewer than 300 independent items get the exact "
    "Clopper-Pearson 95% interval; other figures, and shares from 300 items on, a seeded percentile bootstrap; "
    "with data.cluster_column the bootstrap resamples whole clusters. Deltas against another model on the same "
    "rows use the paired bootstrap and, for shares, the two-sided exact McNemar test (p-value beside the delta). "
    "A gated metric without a sample size cannot pass an audit's minimum unless the audit declares it sample-free. "
)
CORRECTION_NOTES = {
    "holm": ("Family correction: Holm. Each check with a CI gets a one-sided p-value from its CI (normal "
             "approximation) and passes only if its Holm-adjusted p-value is at most 0.025."),
    "none": "Family correction: none (each check is gated at its own 95% CI; set gate_correction: holm to correct).",
}


def validity_section(report: dict[str, Any]) -> ReportSection | None:
    """The section, or None for a run that was never tuned (nothing to judge)."""
    from auditft.degeneracy import Profile
    from auditft.report import environment

    validity = report.get("validity") or {}
    if not validity:
        return None
    subject = Profile.from_dict(validity["subject"]) if validity.get("subject") else None
    rows = [{"audit": "core (test split)", **subject.to_dict(), "summary": subject.summary()}] if subject else []
    for kind, result in (report.get("audits") or {}).items():
        for data in result.get("scored_models") or []:
            profile = Profile.from_dict(data)
            rows.append({"audit": kind, **profile.to_dict(), "summary": profile.summary()})
    stats = report.get("gate_statistics") or {}
    note = STATISTICS_NOTE + CORRECTION_NOTES.get(stats.get("correction", "none"), "")
    template = environment().get_template("validity_section.j2")
    html = Markup(template.render(v={"rules": validity.get("rules", ""), **validity}, rows=rows,
                                  subject=subject, subject_line=subject.summary() if subject else "",
                                  statistics_note=note, power=stats.get("power") or [],
                                  formula=stats.get("power_formula", "")))
    return ReportSection(title="Model validity", html=html, anchor="validity", order=1)
