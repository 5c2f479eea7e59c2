"""Render ``report.html`` from ``report.json`` plus the plugins' report sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft.errors import PluginError
from auditft.records import ReportSection
from auditft.report import environment, render_fragment
from auditft.report.charts import line_chart
from auditft.report.compliance_section import compliance_section

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
    """Core's validity section, every plugin's sections, and a box for each audit whose
    plugin is not loaded. A section hook that fails (raises, or returns something other than
    ``ReportSection``) is reported only where it concerns the report (``_concerns``): as an
    error box naming the plugin, or a ``PluginError`` for a wrong type; elsewhere it is
    skipped without a word, so one plugin's bug never reaches other suites' reports."""
    from auditft.report.validity import validity_section

    core = validity_section(report)  # core's own section, never a plugin's
    sections: list[ReportSection] = [core] if core else []
    for impl in pm.hook.auditft_report_sections.get_hookimpls():
        name = impl.plugin_name
        try:
            produced: Any = impl.function(report=report) or []  # checked section by section below
        except Exception as exc:  # a broken section must not lose the report
            if _concerns(name, report, pm):
                sections.append(_failed_section(name, pm.version_of(name), exc))
            continue
        for section in produced:
            if not isinstance(section, ReportSection):
                if not _concerns(name, report, pm):
                    break
                raise PluginError(f"plugin {name!r}: auditft_report_sections must return "
                                  f"ReportSection objects, got {type(section).__name__}")
            sections.append(section)
    data_stage = set(report.get("data_stage_audits") or ())
    for gap in missing_plugins(report, pm):
        sections.append(ReportSection(
            title=f"Audit {gap['kind']}: section not rebuilt", anchor=f"audit-{gap['kind']}-not-rebuilt",
            order=-1 if gap["kind"] in data_stage else 100,
            html=render_fragment(_GAP_BOX, message=gap_message(gap))))
    return sorted(sections, key=lambda s: (s.order, s.title))


_FAILED_BOX = ('<div class="errorbox"><span class="status error">error</span> the report section of plugin '
               '<strong>{{ plugin }}</strong> {{ version or "(version unknown)" }} failed: '
               '<code>{{ error_type }}: {{ message }}</code>. Its audit\'s figures and checks above come from '
               '<code>report.json</code> and are unaffected.</div>')
_GAP_BOX = ('<div class="errorbox"><span class="status error">not rebuilt</span> {{ message }}. The figures and '
            'checks come from <code>report.json</code> and are unaffected; install the plugin and run '
            '<code>auditft report RUN_DIR</code> to rebuild the section.</div>')


def _failed_section(plugin: str, version: str | None, exc: Exception) -> ReportSection:
    html = render_fragment(_FAILED_BOX, plugin=plugin, version=version, error_type=type(exc).__name__,
                           message=str(exc))
    return ReportSection(title=f"Section from {plugin} failed", html=html, anchor=f"failed-{_slug(plugin)}",
                         order=999)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def _concerns(plugin: str, report: dict[str, Any], pm: PluginManager) -> bool:
    """Whether ``plugin``'s sections concern ``report``: it produced or provides one of the
    report's audits (``audits.<kind>.plugin``, else the kind's registry entry) or its tuner;
    a plugin that provides no tuner and no audit (sections only) concerns every report.
    ``Entry.plugin`` and pluggy's ``plugin_name`` are the same name (``plugins._collect``)."""
    audit_kinds = {e.kind for e in pm.audits if e.plugin == plugin}
    tuner_kinds = {e.kind for e in pm.tuners if e.plugin == plugin}
    if not audit_kinds and not tuner_kinds:
        return True
    audits = report.get("audits") or {}
    if any(kind in audit_kinds or (isinstance(a, dict) and a.get("plugin") == plugin) for kind, a in audits.items()):
        return True
    tuner = report.get("tuner") or {}
    return tuner.get("plugin") == plugin or tuner.get("kind") in tuner_kinds


def missing_plugins(report: dict[str, Any], pm: PluginManager) -> list[dict[str, Any]]:
    """The report's audits whose plugin is not loaded in ``pm``: ``{"kind", "plugin",
    "version", "installed"}``. The plugin is the one recorded with the result
    (``audits.<kind>.plugin``); for reports without it, the kind not being registered at all,
    named from ``plugins_used`` or ``limitations`` when the report lists it there."""
    gaps = []
    for kind, audit in (report.get("audits") or {}).items():
        audit = audit if isinstance(audit, dict) else {}
        recorded = audit.get("plugin")
        entry = pm.audits.get(kind)
        if entry is not None and (recorded is None or entry.plugin == recorded):
            continue
        name, version = (recorded, audit.get("plugin_version")) if recorded else _provider(report, kind)
        gaps.append({"kind": kind, "plugin": name, "version": version,
                     "installed": isinstance(name, str) and pm.has_plugin(name)})
    return gaps


def gap_message(gap: dict[str, Any]) -> str:
    """One line: why the section of ``gap["kind"]`` could not be rebuilt."""
    head = f"section of audit {gap['kind']} could not be rebuilt"
    if not gap["plugin"]:
        return f"{head}: the plugin that produced it is not installed (this report does not record its name)"
    who = f"plugin {gap['plugin']} {gap['version'] or '(version unknown)'}"
    if gap["installed"]:
        return f"{head}: {who} produced it, and the installed {gap['plugin']} no longer provides audit {gap['kind']}"
    return f"{head}: {who} is not installed"


def _provider(report: dict[str, Any], kind: str) -> tuple[str | None, str | None]:
    for plugin in report.get("plugins_used") or ():
        if kind in (plugin.get("audits") or ()):
            return plugin.get("name"), plugin.get("version")
    names = [item.get("plugin") for item in report.get("limitations") or () if item.get("kind") == kind]
    if names and names[0]:
        versions = {p.get("name"): p.get("version") for p in (report.get("manifest") or {}).get("plugins") or ()}
        return names[0], versions.get(names[0])
    return None, None


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
    from auditft.plugins import DEFAULT_PLUGINS

    counts = {s: sum(1 for c in report["checks"] if c["status"] == s) for s in ("pass", "fail", "insufficient", "error")}
    return environment().get_template("report.html.j2").render(
        r=report, state=state, banner=title, explanation=explanation,
        sections=[*sections_for(report, pm), compliance_section(report, review)],
        loss_chart=loss, counts=counts, review=review or {},
        health=(report.get("validity") or {}).get("training") or {},
        builtin_plugins=frozenset(DEFAULT_PLUGINS) | {"auditft"},
    )
