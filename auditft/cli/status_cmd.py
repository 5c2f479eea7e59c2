"""``auditft status [RUN_DIR]``: where runs stand and what each is waiting for."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(name="status")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--reports", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
              show_default=True, help="Reports directory to list when no RUN_DIR is given.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def command(run_dir: Path | None, reports: Path, fmt: str) -> None:
    """Show the state of one run, or of every run under --reports."""
    from auditft.signoff.layout import find_runs
    from auditft.signoff.status import run_status

    rows = [run_status(run_dir)] if run_dir else [run_status(p) for p in find_runs(reports)]
    if fmt == "json":
        click.echo(json.dumps(rows if not run_dir else rows[0], indent=2))
        return
    if not rows:
        click.echo(f"no runs under {reports}")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from auditft.signoff.identity import printable

    table = Table()
    table.add_column("run", no_wrap=True)
    for column in ("state", "verdict", "author", "waiting for"):
        table.add_column(column)
    for row in rows:
        # values come from run folders: shown as text, never as rich markup or terminal escapes
        table.add_row(*(escape(printable(str(v))) for v in (row["run_id"], row["state"], row.get("verdict") or "",
                                                           row.get("author") or "", row["waiting_for"])))
    Console().print(table)
