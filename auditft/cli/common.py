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
