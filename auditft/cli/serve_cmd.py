"""``auditft serve``: the reviewer's workspace on a local web server (docs/review.md).
Exit 0 on shutdown, 2 bad arguments."""

from __future__ import annotations

from pathlib import Path

import click

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command(name="serve")
@click.option("--reports", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
              show_default=True, help="Reports directory whose runs to show.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless asked).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--reviewer", envvar="AUDITFT_USER", help="Who decides (default: $AUDITFT_USER, else the OS user).")
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="ed25519 private key (auditft keygen) every decision is signed with.")
@click.option("--user-header", help="Team mode behind a reverse proxy with single sign-on: take the reviewer from "
                                    "this request header (trusted only when this option is given).")
@click.pass_context
def command(ctx: click.Context, reports: Path, host: str, port: int, reviewer: str | None, key: Path | None,
            user_header: str | None) -> None:
    """Serve the reviewer's workspace: read runs, waive, approve or reject in a browser."""
    try:
        import uvicorn
    except ImportError:
        from auditft.errors import AuditftError

        raise AuditftError("auditft serve needs its extra: pip install 'auditft[serve]'") from None

    from auditft.signoff import identity
    from auditft.errors import AuditftError
    from auditft.cli.common import plugin_manager
    from auditft.signoff.identity import author_name
    from auditft.serve.app import Workspace, create_app

    if not reports.is_dir():
        raise AuditftError(f"--reports: {reports} is not a directory")
    name = None if user_header else identity.person(author_name(reviewer), "--reviewer")
    app = create_app(Workspace(reports.resolve(), name, key, user_header, plugin_manager(ctx)))
    who = f"reviewer from the {user_header} header" if user_header else f"reviewer {name}"
    click.echo(f"auditft workspace for {reports.resolve()} at http://{host}:{port}/ ({who}"
               f"{', signing with ' + str(key) if key else ''}); Ctrl-C stops it")
    if host not in LOOPBACK:
        click.echo(f"warning: listening on {host}, not only this machine; anyone who reaches it decides as "
                   f"{who}. Put it behind a reverse proxy with sign-on (docs/review.md)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
