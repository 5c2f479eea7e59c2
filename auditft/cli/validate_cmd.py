"""``auditft validate SUITE``: check a suite, its plugin options, data rows and model path."""

from __future__ import annotations

from pathlib import Path

import click

from auditft.cli.common import plugin_manager


@click.command(name="validate")
@click.argument("suite", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def command(ctx: click.Context, suite: Path) -> None:
    """Check SUITE without running it (exit 0 valid, 2 invalid)."""
    from auditft.run import prepare

    prepared = prepare(suite, plugin_manager(ctx))
    counts = prepared.data.counts()
    labels = f", labels {prepared.data.labels}" if prepared.data.labels else ""
    click.echo(
        f"{suite}: valid ({prepared.suite.task}, tuner {prepared.suite.tuner.kind}, "
        f"audits {', '.join(a.kind for a in prepared.suite.audits)}; "
        f"train {counts['train']} / validation {counts['validation']} / test {counts['test']} rows{labels})"
    )
