"""``auditft release RUN_DIR --to DIR [--format auditft|hf] [--mlflow]``: ship the approved
bytes. Exit 0 released, 4 not releasable yet (says why), 6 integrity failure."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="release")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--to", "to", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Registry folder; the release goes to DIR/<suite>/<run_id>/.")
@click.option("--format", "layout", type=click.Choice(["auditft", "hf"]), default="auditft", show_default=True,
              help="hf: a folder huggingface_hub.upload_folder publishes unchanged (adapter files at the top, "
                   "README.md as a Hub model card, auditft's evidence under auditft/).")
@click.option("--mlflow", "mlflow", is_flag=True,
              help="Also record the release in MLflow (auditft export --mlflow): the model version's alias "
                   "`released` moves to this run.")
@click.option("--tracking-uri", default=None, help="With --mlflow: the tracking server [default: a SQLite store "
                                                   "under the reports directory].")
@click.option("--actor", envvar="AUDITFT_USER", help="Who releases (default: $AUDITFT_USER, else the OS user).")
@click.pass_context
def command(ctx: click.Context, run_dir: Path, to: Path, layout: str, mlflow: bool, tracking_uri: str | None,
            actor: str | None) -> None:
    """Copy the exact approved bytes out of quarantine and record the release."""
    from auditft.signoff.release import release
    from auditft.cli.common import plugin_manager
    from auditft.signoff.identity import author_name, printable

    if tracking_uri and not mlflow:
        raise click.UsageError("--tracking-uri needs --mlflow")
    destination = release(run_dir, to, actor=author_name(actor), plugins=plugin_manager(ctx), layout=layout)
    click.echo(printable(f"released to {destination}"))
    if mlflow:  # after the release is recorded: the registry mirrors the ledger, never leads it
        from auditft.exports.mlflow_export import export_run

        found = export_run(run_dir, tracking_uri=tracking_uri)
        click.echo(printable(f"mlflow: {found['model_name']} version {found['model_version']} "
                             f"(aliases: {', '.join(found.get('aliases') or []) or 'none'}) in {found['tracking_uri']}"))
