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
"""


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
    html = render_fragment(SECTION, v={"rules": validity.get("rules", ""), **validity}, rows=rows,
                           subject=subject, subject_line=subject.summary() if subject else "")
    return ReportSection(title="Model validity", html=html, anchor="validity", order=1)
