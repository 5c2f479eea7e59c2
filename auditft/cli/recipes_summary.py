"""``auditft run`` on a suite with several tuners: one run per tuner, then their comparison
(``auditft.recipes``), and a table of what each tuner gave."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import RunAborted

if TYPE_CHECKING:
    from auditft.plugins import PluginManager
    from auditft.recipes import BatchResult


def run_several(suite: Path, pm: PluginManager, selected: tuple[str, ...], *, out: Path, resume: Path | None,
                author: str) -> int:
    """Run every selected tuner; the exit code: 0 all passed, 3 one blocked, a failed run's own code."""
    from rich.console import Console

    from auditft import guards
    from auditft.cli.common import warn_load_failures
    from auditft.recipes import run_all
    from auditft.signoff.identity import printable
    from auditft.tuner_list import expand

    recipes = expand(suite, pm, selected)
    warn_load_failures(pm)
    console = Console()

    def announce(line: str) -> None:
        console.rule(printable(line), style="cyan")

    try:
        with guards.no_process_exit():
            result = run_all(recipes, pm, reports=out, author=author, resume=resume, announce=announce)
    except guards.PluginExit as exc:
        raise RunAborted(f"a plugin called os._exit({exc.code}) during the run; the batch stops "
                         "(auditft run SUITE --resume finishes it)") from None
    print_batch(result, console)
    return result.exit_code()


def print_batch(result: BatchResult, console: Any) -> None:
    from rich.table import Table

    from auditft.report import fmt
    from auditft.signoff.identity import printable

    table = Table(title=f"{result.folder.name}: one run per tuner")
    for column in ("tuner", "verdict", "quality", "trainable", "training s"):
        table.add_column(column)
    table.add_column("run", overflow="fold")  # the run id is what a reviewer types next
    colors = {"passed": "green", "blocked": "red"}
    for o in result.outcomes:
        report = o.report or {}
        verdict = report.get("verdict") or "failed"
        metrics = ((report.get("audits") or {}).get("accuracy") or {}).get("metrics") or {}
        quality = next((f"{name} {fmt(metrics[name]['value'])}" for name in ("macro_f1", "accuracy", "token_f1")
                        if isinstance(metrics.get(name), dict)), "–")
        tuner = report.get("tuner") or {}
        seconds = (report.get("timings") or {}).get("tuning")
        kept = " (kept)" if o.how == "kept" else " (resumed)" if o.how == "resumed" else ""
        table.add_row(printable(o.name), f"[{colors.get(verdict, 'magenta')}]{verdict}[/]{kept}", quality,
                      f"{tuner.get('trainable_parameters', '–'):,}" if tuner else "–",
                      f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "–",
                      printable(o.run_dir.name if o.run_dir else "–"))
    console.print(table)
    for o in result.outcomes:
        if o.error:
            console.print(f"[magenta]{printable(o.name)} failed:[/] {printable(o.error)}", highlight=False)
    if result.comparison is not None:
        console.print(f"comparison: {result.comparison}", highlight=False, soft_wrap=True)
    else:
        console.print(f"comparison: {result.comparison_note}", highlight=False, soft_wrap=True)
    console.print(f"batch: {result.folder} (auditft run SUITE --resume {result.folder} finishes what is missing)",
                  highlight=False, soft_wrap=True)
