"""The ``auditft`` command group. One small module per command (group).

The plugin manager is built once per invocation, lazily (``cli.common.plugin_manager``).
``auditft --help`` lists the commands plugins add, so it loads plugins only when the cached
plugin table (``auditft.plugin_table``) is missing or names a plugin with commands; it never
imports torch.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from auditft.version import __version__
from auditft.cli.common import plugin_manager
from auditft.errors import AuditftError, ExitCode


class AuditftGroup(click.Group):
    """Turns ``AuditftError`` into one line on stderr and its exit code (no traceback), and
    adds the commands plugins contribute through ``auditft_register_commands``."""

    _plugin_commands_loaded = False

    def _load_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugin_commands_loaded:
            return
        self._plugin_commands_loaded = True
        try:
            pm = plugin_manager(ctx)
        except AuditftError:
            return  # the command itself will report it
        pm.hook.auditft_register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if not ctx.resilient_parsing and os.environ.get("AUDITFT_NO_PLUGIN_COMMANDS") != "1":
            from auditft import plugin_table

            # the cached plugin table says whether any plugin adds commands: if none does,
            # ``--help`` imports no plugin at all; on a miss, load them and keep the table
            table = plugin_table.load()
            if table is None or plugin_table.provides_commands(table):
                self._load_plugin_commands(ctx)
                if table is None and "pm" in (ctx.find_root().obj or {}):
                    from auditft.plugins import describe_plugins

                    plugin_table.store(describe_plugins(ctx.find_root().obj["pm"]))
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands(ctx)
            command = super().get_command(ctx, name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditftError as exc:
            if os.environ.get("AUDITFT_DEBUG") == "1":
                raise
            from auditft.signoff.identity import printable

            # names and paths come from users: never let one send escapes to the terminal
            click.echo(f"error: {printable(' '.join(str(exc).split()))}", err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug or an environment problem: one line, exit 1
            if os.environ.get("AUDITFT_DEBUG") == "1":
                raise
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
            click.echo(f"internal error: {message} (AUDITFT_DEBUG=1 shows the traceback; "
                       "a run directory keeps it in error.txt)", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


@click.group(cls=AuditftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditft")
@click.option("--strict-plugins", is_flag=True, envvar="AUDITFT_STRICT_PLUGINS",
              help="Make a plugin that fails to load a fatal error.")
@click.pass_context
def cli(ctx: click.Context, strict_plugins: bool) -> None:
    """Fine-tune, audit, and release only what people reviewed and signed.

    \b
    Exit codes: 0 ok / passed, 1 internal error, 2 invalid input,
    3 blocked by the gate, 4 refused by policy, 6 integrity failure.
    """
    ctx.ensure_object(dict)
    ctx.obj["strict_plugins"] = strict_plugins


def _register() -> None:
    from auditft.cli import (compare_cmd, export_cmd, keys_cmd, plugins_cmd, release_cmd, report_cmd, run_cmd,
                             serve_cmd, signoff_cmd, status_cmd, validate_cmd, verify_cmd)

    for module in (run_cmd, validate_cmd, plugins_cmd, status_cmd, report_cmd, release_cmd, verify_cmd, keys_cmd,
                   serve_cmd, compare_cmd, export_cmd):
        cli.add_command(module.command)
    cli.add_command(keys_cmd.trust_group)
    for command in signoff_cmd.commands:
        cli.add_command(command)


_register()


def main() -> None:
    from auditft import optional_imports

    optional_imports.block()  # bitsandbytes only where a suite quantises (optional_imports.py)
    try:
        cli.main(prog_name="auditft")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


__all__ = ["ExitCode", "cli", "main"]
