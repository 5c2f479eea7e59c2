"""``auditft release RUN_DIR --to DIR``: ship the approved bytes. Exit 0 released,
4 not releasable yet (says why), 6 integrity failure."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="release")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--to", "to", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Registry folder; the release goes to DIR/<suite>/<run_id>/.")
@click.option("--actor", envvar="AUDITFT_USER", help="Who releases (default: $AUDITFT_USER, else the OS user).")
@click.pass_context
def command(ctx: click.Context, run_dir: Path, to: Path, actor: str | None) -> None:
    """Copy the exact approved bytes out of quarantine and record the release."""
    from auditft.signoff.release import release
    from auditft.cli.common import plugin_manager
    from auditft.signoff.identity import author_name

    destination = release(run_dir, to, actor=author_name(actor), plugins=plugin_manager(ctx))
    click.echo(f"released to {destination}")
