"""``auditft export RUN_DIR --mlflow [--tracking-uri URI]``: a finished run and its sign-off
state in MLflow's tracking and model registry (docs/exports.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="export")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--mlflow", "to_mlflow", is_flag=True,
              help="Log the run to MLflow and register its adapter under the suite's name.")
@click.option("--tracking-uri", default=None, metavar="URI",
              help="MLflow tracking (and registry) URI [default: sqlite:///<reports>/mlflow/mlflow.db].")
def command(run_dir: Path, to_mlflow: bool, tracking_uri: str | None) -> None:
    """Export a finished run: its checks, artefacts and its state from the ledger. Exporting
    again creates nothing new; it updates the state tags and moves the aliases.

    Exit 2 when RUN_DIR is not a run, 6 when its bytes or the ledger do not match."""
    from auditft.errors import AuditftError
    from auditft.signoff.identity import printable

    if not to_mlflow:
        raise AuditftError("choose a destination: --mlflow")
    from auditft.exports.mlflow_export import export_run

    done = export_run(run_dir, tracking_uri=tracking_uri)
    aliases = ", ".join(done["aliases"]) or "none"
    click.echo(printable(f"mlflow: run {done['mlflow_run_id']} in {done['tracking_uri']}"))
    click.echo(printable(f"registered model {done['model_name']} version {done['model_version']} (aliases: {aliases})"))
    click.echo("created" if done["created"] else "updated")
