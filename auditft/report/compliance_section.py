"""The report's "Regulatory map" section (``auditft.report.compliance``), rendered with the
sign-off record as it stands, so a re-rendered report shows approvals the map was waiting for.
The HTML is ``templates/compliance_section.j2``."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from auditft.errors import AuditftError
from auditft.records import ReportSection

ORDER = 900  # after every audit's section: the map points back to them


def compliance_section(report: dict[str, Any], review: dict[str, Any] | None) -> ReportSection:
    from auditft.report import environment
    from auditft.report.compliance import assess

    try:
        assessment, error = assess(report, review or None), None
    except AuditftError as exc:  # a broken map set for this reader: the report still renders
        assessment, error = None, str(exc)
    html = environment().get_template("compliance_section.j2").render(a=assessment, error=error)
    return ReportSection(title="Regulatory map", html=Markup(html), anchor="regulatory-map", order=ORDER)
