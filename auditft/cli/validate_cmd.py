"""``auditft validate SUITE``: check a suite, its plugin options, data rows and model path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from auditft.cli.common import plugin_manager, warn_load_failures

if TYPE_CHECKING:
    from auditft.context import Prepared


@click.command(name="validate")
@click.argument("suite", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def command(ctx: click.Context, suite: Path) -> None:
    """Check SUITE without running it (exit 0 valid, 2 invalid); a suite with several tuners
    is checked tuner by tuner, one line each.

    A plugin that failed to load is a warning on stderr (fatal under --strict-plugins)."""
    from auditft.run import prepare
    from auditft.tuner_list import expand, is_several

    pm = plugin_manager(ctx)
    if is_several(suite):
        plans = [(f"{suite} [{r.name}]", prepare(r.suite, pm)) for r in expand(suite, pm)]
    else:
        plans = [(str(suite), prepare(suite, pm))]
    warn_load_failures(pm)  # the suite does not need it, but its kinds are missing from this install
    for where, prepared in plans:
        _describe(where, prepared)


def _describe(suite: str, prepared: Prepared) -> None:
    counts = prepared.data.counts()
    labels = f", labels {prepared.data.labels}" if prepared.data.labels else ""
    click.echo(
        f"{suite}: valid ({prepared.suite.task}, tuner {prepared.suite.tuner.kind}, "
        f"audits {', '.join(a.kind for a in prepared.suite.audits)}; "
        f"train {counts['train']} / validation {counts['validation']} / test {counts['test']} rows{labels})"
    )
    from auditft.signoff.identity import printable

    for line in declarations(prepared):
        click.echo(f"  {printable(line)}")  # kinds, plugins and weights are third-party text


def declarations(prepared: Prepared) -> list[str]:
    """What the suite's kinds declare they reach beyond the base model: the network, extra weights."""
    lines = []
    kinds = [("tuner", prepared.tuner)] + [("audit", a.entry) for a in prepared.audits]
    for what, entry in kinds:
        if entry.needs_network:
            lines.append(f"{what} {entry.kind!r} (plugin {entry.plugin!r}) needs the network")
        if entry.extra_weights:
            lines.append(f"{what} {entry.kind!r} (plugin {entry.plugin!r}) loads extra weights: "
                         f"{', '.join(entry.extra_weights)}")
    return lines
