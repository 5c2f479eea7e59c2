"""``auditft keygen NAME``: an ed25519 key pair for signing reviews."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="keygen")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              default=Path.home() / ".config" / "auditft" / "keys", show_default=True)
def command(name: str, directory: Path) -> None:
    """Write NAME.key (private) and print the public key for the suite's release policy."""
    from auditft.signing import generate_keypair

    path, public = generate_keypair(directory, name)
    click.echo(f"private key: {path}\nadd to the suite:\n  release:\n    reviewer_keys:\n      {name}: {public}")
