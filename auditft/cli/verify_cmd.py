"""``auditft verify RUN_DIR``: ledger chain, HMAC, signatures, the run's own record and the
artefact bytes. Exit 0 intact, 6 integrity failure (the first bad line is named).

An intact run whose report has an audit from a plugin that is not installed here gets a
``warning:`` line naming it (its report section cannot be re-rendered); the exit code stays
0, since the bytes are intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from auditft.errors import ExitCode


@click.command(name="verify")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def command(ctx: click.Context, run_dir: Path) -> None:
    """Check that nothing recorded for RUN_DIR was edited, removed or forged."""
    from auditft.signoff.layout import ledger_for, read_state
    from auditft.signoff.events import bound_artefacts
    from auditft.signoff.integrity import integrity_problems

    read_state(run_dir)  # exit 2 when it is not a run directory
    problems = integrity_problems(run_dir)
    if problems:
        for problem in problems:
            click.echo(f"integrity: {problem}", err=True)
        ctx.exit(int(ExitCode.INTEGRITY))
    ledger = ledger_for(run_dir)
    keyed = " (HMAC checked)" if ledger.key else ""
    click.echo(f"intact: ledger {len(ledger.events())} events{keyed}; "
               f"{len(bound_artefacts(run_dir))} artefacts match the gate's record")
    for line in _rendering_gaps(ctx, run_dir):
        click.echo(f"warning: {line}", err=True)


def _rendering_gaps(ctx: click.Context, run_dir: Path) -> list[str]:
    """What this installation cannot re-render of the run's report (missing plugins)."""
    import json

    from auditft.cli.common import plugin_manager
    from auditft.errors import PluginError
    from auditft.report.html import gap_message, missing_plugins

    try:
        report: Any = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # a run stopped before its report: nothing to render
    if not isinstance(report, dict):
        return []
    try:
        pm = plugin_manager(ctx)
        return [f"{run_dir / 'report.json'}: {gap_message(gap)}" for gap in missing_plugins(report, pm)]
    except PluginError as exc:  # --strict-plugins with a broken plugin: say so, the bytes are still intact
        return [f"cannot check which report sections this installation can render: {exc}"]
