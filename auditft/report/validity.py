"""The report's "Model validity" section: core's degeneracy findings (``report.json`` key
``validity`` and each audit's ``scored_models``), rendered from the JSON alone."""

from __future__ import annotations

from typing import Any

from auditft.records import ReportSection

SECTION = """
<p>{% if subject %}{% if subject.degenerate %}<span class="status fail">degenerate</span> <strong>{{ subject_line }}</strong>.
A model that does nothing can satisfy parity, odds, spread and hallucination metrics trivially, so every check on
such a metric fails too.{% else %}<span class="status pass">not degenerate</span> {{ subject_line }}.{% endif %}
{% else %}Core could not score the adapter on the test split{% if v.get("error") %}: {{ v.error }}{% endif %}.{% endif %}</p>
<table>
  <tr><th>audit</th><th>model</th><th>rows / prompts</th><th>n</th><th>degenerate</th><th>what core found</th></tr>
  {% for row in rows %}
  <tr><td>{{ row.audit }}</td><td>{{ row.model }}</td><td>{{ row.split }}</td><td class="num">{{ fmt(row.n) }}</td>
      <td>{% if row.degenerate %}<span class="status fail">yes</span>{% else %}no{% endif %}</td>
      <td class="small">{{ row.summary }}</td></tr>
  {% endfor %}
</table>
<p class="small muted">Method. {{ v.rules }}</p>
<h4>Gate statistics</h4>
<p class="small">{{ statistics_note }}</p>
{% if power %}
<table>
  <tr><th>audit</th><th>gate</th><th>margin</th><th>items needed</th><th>test rows</th><th>powered</th></tr>
  {% for row in power %}
  <tr><td>{{ row.audit }}</td><td>{{ row.metric }} {{ ">=" if row.op == "min" else "<=" }} {{ row.threshold }}</td>
      <td class="num">{{ row.margin }}</td><td class="num">{{ row.needed if row.needed is not none else "never" }}</td>
      <td class="num">{{ row.available if row.available is not none else "(its own items)" }}</td>
      <td>{% if row.powered is none %}checked at the gate{% elif row.powered %}yes{% else %}<span class="status insufficient">no: insufficient by design</span>{% endif %}</td></tr>
  {% endfor %}
</table>
<p class="small muted">Power check, before training: {{ formula }}.</p>
{% endif %}
"""

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
    from auditft.report import render_fragment

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
    html = render_fragment(SECTION, v={"rules": validity.get("rules", ""), **validity}, rows=rows,
                           subject=subject, subject_line=subject.summary() if subject else "",
                           statistics_note=note, power=stats.get("power") or [],
                           formula=stats.get("power_formula", ""))
    return ReportSection(title="Model validity", html=html, anchor="validity", order=1)
