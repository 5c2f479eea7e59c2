"""``auditft compare RUN_DIR... [--out DIR] [--against-released [DIR]]``: runs of one task on
the same test rows side by side, with paired bootstrap intervals (docs/compare.md)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click


@click.command(name="compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for compare.html and compare.json [default: <reports>/compare/compare-<time>/, "
                   "or <reports>/compare/<run_id>/ with --against-released].")
@click.option("--against-released", "against", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Compare one run with what was signed off: a released folder, the registry given to "
                   "`auditft release --to`, or (no DIR) the newest approved or released run of the same suite.")
@click.option("--n-boot", type=click.IntRange(100, 100_000), default=2000, show_default=True,
              help="Paired bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resamples.")
def command(run_dirs: tuple[Path, ...], out: Path | None, against: str | None, n_boot: int, seed: int) -> None:
    """Set finished runs of one task on the same test rows side by side: each check's value,
    CI and status, the paired difference of every pair of runs, cost, a Pareto view.

    Exit 2 when the runs are not comparable (the message names what differs)."""
    from auditft.compare.build import compare, write_comparison
    from auditft.compare.released import against_path, released_baseline
    from auditft.compare.runs import load_run
    from auditft.errors import RunDirError
    from auditft.signoff.identity import printable

    runs = [load_run(p) for p in run_dirs]
    baseline = None
    if against is not None:
        if len(runs) != 1:
            raise RunDirError("--against-released compares exactly one RUN_DIR with what was released "
                              f"(got {len(runs)}); put DIR after the option or leave it out")
        baseline = released_baseline(runs[0], Path(against) if against else None)
        out = out or against_path(runs[0].path.parent, runs[0].run_id)
    elif len(runs) < 2:
        raise RunDirError("compare needs at least two RUN_DIRs (or one with --against-released)")
    result, warnings = compare(runs, n_boot=n_boot, seed=seed, against=baseline)
    for line in warnings:
        click.echo(printable(line), err=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = out or runs[0].path.parent / "compare" / f"compare-{stamp}"
    json_path, html_path = write_comparison(result, out)
    for pair in result["pairs"]:
        for cid in ("accuracy:accuracy", "accuracy:exact_match"):
            m = pair["metrics"].get(cid)
            if m is None:
                continue
            figure = (f"{m['difference']:+.4f} [{m['ci_low']:+.4f}, {m['ci_high']:+.4f}] ({m['verdict']})"
                      if m.get("difference") is not None else m.get("reason", "no paired interval"))
            click.echo(printable(f"{cid} {pair['b']} - {pair['a']}: {figure}"))
    click.echo(printable(f"wrote {html_path} and {json_path}"))
