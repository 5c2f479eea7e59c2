"""``auditft run SUITE``: tune, audit, gate, report. Exit 0 passed (awaiting review),
3 blocked by the gate, 2 invalid input, 1 internal error."""

from __future__ import annotations

from pathlib import Path

import click

from auditft.cli.common import plugin_manager, warn_load_failures
from auditft.errors import RunAborted, ExitCode


@click.command(name="run")
@click.argument("suite", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
              show_default=True, help="Reports directory: the run directory is created inside it.")
@click.option("--resume", "resume", type=click.Path(path_type=Path, file_okay=False),
              help="Continue an interrupted run of SUITE in this run directory.")
@click.option("--author", envvar="AUDITFT_USER", help="Who runs it (default: $AUDITFT_USER, else the OS user).")
@click.option("--tuner", "tuners", multiple=True, metavar="NAME",
              help="Run only this entry of the suite's tuners: list (repeatable); on a single-tuner suite, run "
                   "this tuner kind instead, one run per --tuner, with the suite's training settings.")
@click.pass_context
def command(ctx: click.Context, suite: Path, out: Path, resume: Path | None, author: str | None,
            tuners: tuple[str, ...]) -> None:
    """Fine-tune, audit base model and adapter, gate, and write the report.

    A suite with several tuners (tuners: in place of tuner:) makes one ordinary run per tuner
    and a comparison of them in <out>/compare/<batch id>/; --resume takes that folder."""
    import signal

    from auditft import guards
    from auditft.run import execute, prepare
    from auditft.signoff.identity import author_name
    from auditft.tuner_list import is_several

    # a SIGTERM (CI timeout, `kill`) unwinds like Ctrl-C, so the run is marked failed, not left
    # looking like it is still in progress
    signal.signal(signal.SIGTERM, _terminate)
    pm = plugin_manager(ctx)
    if is_several(suite, tuners):
        from auditft.cli.recipes_summary import run_several

        ctx.exit(run_several(suite, pm, tuners, out=out, resume=resume, author=author_name(author)))
    prepared = prepare(suite, pm)
    warn_load_failures(pm)  # a broken plugin the suite does not use is not silent either
    reports = resume.parent if resume else out  # a resumed run stays where it is
    try:
        # plugin code (a tuner, an observer hook) cannot end the process with a code of its
        # choosing: exit 0 means a report was written and every check passed
        with guards.no_process_exit():
            report = execute(prepared, pm, reports=reports, author=author_name(author), resume=resume)
    except guards.PluginExit as exc:
        raise RunAborted(f"a plugin called os._exit({exc.code}) during the run; the run is marked failed") from None
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise  # a signal (128 + n) or a plugin's non-zero exit: the code already says failure
        raise RunAborted("a plugin called sys.exit(0) during the run; the run is marked failed") from None
    from auditft import distributed

    distributed.finish()  # every process got here: leave the process group together
    if distributed.is_main():  # under torchrun every process gets the verdict; one prints it
        print_summary(report, reports)
    ctx.exit(int(ExitCode.OK if report["verdict"] == "passed" else ExitCode.BLOCKED))


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def print_summary(report: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from auditft.report import fmt, signed

    console = Console()
    colors = {"pass": "green", "fail": "red", "insufficient": "yellow", "error": "magenta"}
    table = Table(title=f"{report['run_id']}: {report['verdict'].upper()}")
    for column in ("status", "audit", "metric", "value", "95% CI", "threshold", "base", "delta"):
        table.add_column(column)
    for c in report["checks"]:
        ci = f"{fmt(c['ci_low'])}–{fmt(c['ci_high'])}" if c["ci_low"] is not None else "–"
        op = ">=" if c["op"] == "min" else "<="
        threshold = f"{op} {c['threshold']:g}" if c["threshold"] is not None else ""
        table.add_row(f"[{colors[c['status']]}]{c['status']}[/]", c["audit"], c["metric"], fmt(c["value"]), ci,
                      threshold, fmt(c["base_value"]), signed(c["delta"]))
    console.print(table)
    run_dir = out / report["run_id"]
    console.print(f"report: {run_dir / 'report.html'}", highlight=False, soft_wrap=True)
    console.print(f"state: {report['state']} (adapter quarantined in {run_dir / 'adapter'})", highlight=False,
                  soft_wrap=True)
