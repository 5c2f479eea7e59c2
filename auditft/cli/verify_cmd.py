"""``auditft verify RUN_DIR``: ledger chain, HMAC, signatures, the run's own record and the
artefact bytes. Exit 0 intact, 6 integrity failure (the first bad line is named)."""

from __future__ import annotations

from pathlib import Path

import click

from auditft.errors import ExitCode


@click.command(name="verify")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def command(ctx: click.Context, run_dir: Path) -> None:
    """Check that nothing recorded for RUN_DIR was edited, removed or forged."""
    from auditft.signoff.layout import ledger_for, read_state
    from auditft.signoff.events import bound_artefacts
    from auditft.signoff.integrity import integrity_problems

    read_state(run_dir)  # exit 2 when it is not a run directory
    problems = integrity_problems(run_dir)
    if problems:
        for problem in problems:
            click.echo(f"integrity: {problem}", err=True)
        ctx.exit(int(ExitCode.INTEGRITY))
    ledger = ledger_for(run_dir)
    keyed = " (HMAC checked)" if ledger.key else ""
    click.echo(f"intact: ledger {len(ledger.events())} events{keyed}; "
               f"{len(bound_artefacts(run_dir))} artefacts match the gate's record")
