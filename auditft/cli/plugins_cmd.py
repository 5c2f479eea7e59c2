"""``auditft plugins``: list plugins, their versions, hooks, kinds and load errors."""

from __future__ import annotations

import json

import click

from auditft.cli.common import plugin_manager


@click.command(name="plugins")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="json", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Include built-in plugins in the table.")
@click.pass_context
def command(ctx: click.Context, fmt: str, show_all: bool) -> None:
    """List plugins (built-in and installed), the tuners and audits they provide."""
    from auditft.plugins import describe_plugins

    info = describe_plugins(plugin_manager(ctx))
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="auditft plugins")
    for column in ("plugin", "version", "tuners", "audits", "hooks"):
        table.add_column(column)
    for plugin in info["plugins"]:
        if plugin["builtin"] and not show_all and not (plugin["tuners"] or plugin["audits"]):
            continue
        table.add_row(plugin["name"], plugin["version"] or "", ", ".join(plugin["tuners"]),
                      ", ".join(plugin["audits"]), ", ".join(h.removeprefix("auditft_") for h in plugin["hooks"]))
    console.print(table)
    for failure in info["load_errors"]:
        console.print(f"[red]load error[/red] {failure['plugin']}: {failure['error']}", markup=True, highlight=False)
