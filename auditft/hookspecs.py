"""The auditft plugin contract: every hook auditft calls is declared here.

Implement a hook with a module-level function (or a method) named exactly like it and
decorated with ``@auditft.hookimpl``. You may accept any subset of the listed arguments:
auditft calls hooks by keyword, so arguments can be added later without breaking you.
A misspelled hook name is an error when the plugin manager is built (``check_pending``).

"Calls all" hooks run every implementation, most recently registered first.
No hook can approve, waive or release: sign-off is core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from auditft.records import AuditResult, ReportSection, TuneResult
    from auditft.registry import AuditRegistry, TunerRegistry
    from auditft.context import RunContext

PROJECT = "auditft"
_spec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Mark plugin hook implementations; import it as ``auditft.hookimpl``."""


# -- Registration: once, while the plugin manager is built ------------------------------


@_spec
def auditft_register_tuners(register: TunerRegistry) -> None:
    """Offer fine-tuning backends, usable in suites as ``tuner: {kind: ...}``.

    Call ``register.add(kind, factory, summary=..., tasks=..., options=...)`` once per
    backend. ``factory(options)`` runs only when a suite selects ``kind``, so import torch
    and peft inside it or inside the object it returns. Calls all. A ``kind`` already taken
    by another plugin raises ``PluginError`` naming both plugins.
    """


@_spec
def auditft_register_audits(register: AuditRegistry) -> None:
    """Offer audits, usable in suites as ``audits: [{kind: ...}]``.

    Same rules as ``auditft_register_tuners``; additionally declare the gate metrics
    (``metrics={"accuracy": "higher", ...}``) and the minimum sample size (``min_n``).
    """


@_spec
def auditft_register_commands(cli: click.Group) -> None:
    """Attach extra subcommands to the ``auditft`` command group. Calls all.

    Called once per CLI invocation, after the plugin manager is built. Keep imports inside
    the command functions so ``auditft --help`` stays instant.
    """


# -- Run lifecycle (observers: return values are ignored, exceptions are shown) ---------


@_spec
def auditft_run_started(run: RunContext) -> None:
    """Called once after the suite and its data are validated and the run directory
    exists, before tuning. ``run`` is read-only for observers."""


@_spec
def auditft_tuning_finished(run: RunContext, tuning: TuneResult) -> None:
    """Called after the tuner wrote the quarantined adapter."""


@_spec
def auditft_audit_finished(run: RunContext, result: AuditResult) -> None:
    """Called after each audit, with its frozen result (``error`` set if it crashed)."""


@_spec
def auditft_run_finished(run: RunContext, report: dict[str, Any]) -> None:
    """Called once the gate decided and the report files are written.

    ``report`` is the content of ``report.json``; mutating it changes nothing on disk.
    """


# -- Report ------------------------------------------------------------------------------


@_spec
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:  # type: ignore[empty-body]
    """Return sections for the HTML report, built from ``report`` (``report.json``).

    Calls all. Build each section's HTML with ``auditft.report.render_fragment`` (Jinja2,
    autoescape on) so dataset and model text stays inert. Sections are placed after the
    gate table by their ``order``; they cannot change verdicts or the sign-off block.
    Because sections are built from ``report.json`` alone, ``auditft report RUN_DIR`` can
    rebuild them later without re-running anything.
    """
