"""What every command shares: the invocation's one plugin manager.

It is built once per invocation, lazily, honouring ``--strict-plugins``, and handed to
everything the command calls (run, release, re-render, the workspace), so a command never
works with plugins other than the ones it reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from auditft.plugins import PluginManager


def plugin_manager(ctx: click.Context) -> PluginManager:
    root = ctx.find_root()
    root.ensure_object(dict)
    if "pm" not in root.obj:
        from auditft.plugins import make_plugin_manager

        root.obj["pm"] = make_plugin_manager(strict=bool(root.obj.get("strict_plugins")))
    pm: PluginManager = root.obj["pm"]
    return pm


def load_failure_warnings(pm: PluginManager) -> list[str]:
    """One line per plugin that failed to load (lenient mode only: strict mode never gets here)."""
    from auditft.signoff.identity import printable

    return [f"warning: plugin '{printable(f.plugin)}' failed to load ({printable(_shorten(f.error))}); "
            "its kinds are unavailable (auditft plugins; --strict-plugins makes this fatal)"
            for f in pm.load_failures]


def _shorten(text: str, limit: int = 300) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def warn_load_failures(pm: PluginManager) -> None:
    """Print ``load_failure_warnings`` on stderr, so a lenient command never hides a broken plugin."""
    for line in load_failure_warnings(pm):
        click.echo(line, err=True)
