"""``auditft report RUN_DIR``: rebuild report.html with the current state and sign-off record."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="report")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def command(ctx: click.Context, run_dir: Path) -> None:
    """Re-render RUN_DIR/report.html from report.json and the ledger."""
    from auditft.cli.common import plugin_manager
    from auditft.signoff.rendering import rerender
    from auditft.signoff.integrity import ensure_intact

    ensure_intact(run_dir)
    click.echo(f"rendered {rerender(run_dir, plugins=plugin_manager(ctx))}")
