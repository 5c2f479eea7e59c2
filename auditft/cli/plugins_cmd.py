"""``auditft plugins``: list plugins, their versions, hooks, kinds and load errors."""

from __future__ import annotations

import json
from typing import Any

import click

from auditft.cli.common import plugin_manager

#: hooks every kind-providing plugin has: the table names only the others
_REGISTRATION_HOOKS = frozenset({"auditft_register_tuners", "auditft_register_audits"})


@click.command(name="plugins")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="json", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Include built-in plugins that provide no kind.")
@click.pass_context
def command(ctx: click.Context, fmt: str, show_all: bool) -> None:
    """List plugins (built-in and installed), the tuners and audits they provide.

    The table has one row per kind (a plugin that failed to load gets a row too); its second
    line says what the kind declares (network, extra weights, data stage) and other hooks.
    The listing is cached per installed plugin set and source (``auditft.plugin_table``;
    ``AUDITFT_NO_PLUGIN_CACHE=1`` loads the plugins every time)."""
    import copy

    from auditft import plugin_table

    info = plugin_table.load()
    strict = bool(ctx.find_root().obj and ctx.find_root().obj.get("strict_plugins"))
    if info is None or (strict and info["load_errors"]):  # strict: a broken plugin must fail here
        from auditft.plugins import describe_plugins

        info = describe_plugins(plugin_manager(ctx))
        plugin_table.store(copy.deepcopy(info))
    for plugin in info["plugins"]:
        plugin["status"] = "loaded"  # added: a failed plugin is listed in load_errors
    for failure in info["load_errors"]:
        failure["status"] = "failed to load"
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console

    Console(highlight=False).print(_table(info, show_all))


def _table(info: dict[str, Any], show_all: bool) -> Any:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from auditft.signoff.identity import printable

    def text(value: object) -> str:  # plugin metadata is third-party text: no markup, no escapes
        return escape(printable(str(value)))

    entries = {(e["plugin"], e["kind"]): e for e in info["tuners"] + info["audits"]}
    table = Table(title="auditft plugins", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("kind", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("plugin  [dim](declarations, hooks)[/]", no_wrap=False, overflow="fold")
    table.add_column("version", overflow="fold")
    for plugin in info["plugins"]:
        kinds = [("tuner", k) for k in plugin["tuners"]] + [("audit", k) for k in plugin["audits"]]
        if not kinds and plugin["builtin"] and not show_all:
            continue
        extra_hooks = [h.removeprefix("auditft_") for h in plugin["hooks"] if h not in _REGISTRATION_HOOKS]
        hooks = [f"hooks: {', '.join(extra_hooks)}"] if extra_hooks else []
        for index, (what, kind) in enumerate(kinds or [("–", "–")]):
            notes = _declarations(entries.get((plugin["name"], kind), {})) + (hooks if index == 0 else [])
            cell = text(plugin["name"]) + "".join(f"\n[dim]{text(n)}[/]" for n in notes)
            table.add_row(text(kind), what, cell, text(plugin["version"] or ""))
    for failure in info["load_errors"]:
        table.add_row("–", "–", f"{text(failure['plugin'])}\n[red]failed to load[/]: {text(failure['error'])}", "")
    return table


def _declarations(entry: dict[str, Any]) -> list[str]:
    notes = []
    if entry.get("needs_network"):
        notes.append("needs network")
    if entry.get("extra_weights"):
        notes.append(f"extra weights: {', '.join(entry['extra_weights'])}")
    if entry.get("stage") == "data":
        notes.append("data stage (runs before tuning)")
    return notes
