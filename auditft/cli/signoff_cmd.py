"""``auditft approve|reject|waive RUN_DIR``: people's decisions, on the record.

Exit 0 recorded, 4 refused by policy (the line says why), 6 integrity failure, 2 not a run.
"""

from __future__ import annotations

from pathlib import Path

import click

RUN_DIR = click.Path(path_type=Path, file_okay=False, exists=False)
KEY_HELP = "ed25519 private key (from `auditft keygen`) to sign the event; required for reviewers listed in the policy."


@click.command(name="approve")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--reviewer", required=True, help="Who approves.")
@click.option("--comment", required=True, help="What they checked, in their words.")
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help=KEY_HELP)
@click.pass_context
def approve_command(ctx: click.Context, run_dir: Path, reviewer: str, comment: str, key: Path | None) -> None:
    """Approve RUN_DIR: binds to the sha256 of its report content and adapter files."""
    from auditft.cli.common import plugin_manager
    from auditft.signoff.rendering import rerender
    from auditft.signoff.decisions import approve

    plugins = plugin_manager(ctx)  # before anything is recorded: --strict-plugins refuses first
    event = approve(run_dir, reviewer, comment, key=key)
    rerender(run_dir, plugins=plugins)
    click.echo(f"approved by {event['actor']} (ledger seq {event['seq']}); report {event['report_sha256'][:12]}..., "
               f"{sum(1 for k in event['artefacts'] if k.startswith('adapter/'))} adapter files bound")


@click.command(name="reject")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--reviewer", required=True)
@click.option("--comment", required=True, help="Why it must not ship.")
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help=KEY_HELP)
@click.pass_context
def reject_command(ctx: click.Context, run_dir: Path, reviewer: str, comment: str, key: Path | None) -> None:
    """Reject RUN_DIR: it can no longer be approved or released."""
    from auditft.cli.common import plugin_manager
    from auditft.signoff.rendering import rerender
    from auditft.signoff.decisions import reject

    plugins = plugin_manager(ctx)  # before anything is recorded: --strict-plugins refuses first
    event = reject(run_dir, reviewer, comment, key=key)
    rerender(run_dir, plugins=plugins)
    click.echo(f"rejected by {event['actor']} (ledger seq {event['seq']})")


@click.command(name="waive")
@click.argument("run_dir", type=RUN_DIR)
@click.argument("check")
@click.option("--reviewer", required=True)
@click.option("--reason", required=True, help="Why the failed check is acceptable; shown in the report.")
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help=KEY_HELP)
@click.pass_context
def waive_command(ctx: click.Context, run_dir: Path, check: str, reviewer: str, reason: str, key: Path | None) -> None:
    """Accept one non-passing CHECK (AUDIT:METRIC, or METRIC when unique), on the record."""
    from auditft.cli.common import plugin_manager
    from auditft.signoff.rendering import rerender
    from auditft.signoff.decisions import waive

    plugins = plugin_manager(ctx)  # before anything is recorded: --strict-plugins refuses first
    event = waive(run_dir, check, reviewer, reason, key=key)
    rerender(run_dir, plugins=plugins)
    click.echo(f"waived {event['check']} ({event['status']}) by {event['actor']} (ledger seq {event['seq']})")


commands = (approve_command, reject_command, waive_command)
