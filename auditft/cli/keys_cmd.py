"""``auditft keygen NAME`` (an ed25519 key pair for signing reviews) and ``auditft trust``
(the trust store beside the ledger: which public key speaks for which reviewer)."""

from __future__ import annotations

from pathlib import Path

import click

REPORTS = click.option("--reports", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
                       show_default=True, help="Reports directory whose ledger and trust store to use.")


@click.command(name="keygen")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              default=Path.home() / ".config" / "auditft" / "keys", show_default=True)
def command(name: str, directory: Path) -> None:
    """Write NAME.key (private) into --dir and print the public key."""
    from auditft.signoff import identity
    from auditft.signoff.signing import generate_keypair

    name = identity.person(name, "NAME")
    if "/" in name or "\\" in name or name.startswith("."):  # person() refuses these too; be explicit
        raise identity.IdentityError("NAME: must not contain a path")
    path, public = generate_keypair(directory, name.replace(" ", "_"))
    click.echo(f"private key: {path}\npublic key: {public}\n"
               f"trust it (a person who administers the reports directory does this once):\n"
               f"  auditft trust add {name!r} {public} --reports reports\n"
               f"then a suite may list it:\n  release:\n    reviewer_keys:\n      {name}: {public}")


@click.group(name="trust")
def trust_group() -> None:
    """The trust store: reviewers' public keys, kept beside the ledger, outside every run."""


@trust_group.command(name="add")
@click.argument("name")
@click.argument("public_key")
@REPORTS
@click.option("--actor", envvar="AUDITFT_USER", help="Who adds it (default: $AUDITFT_USER, else the OS user).")
@click.option("--replace", is_flag=True, help="Replace the key trusted for NAME (recorded in the ledger).")
def trust_add(name: str, public_key: str, reports: Path, actor: str | None, replace: bool) -> None:
    """Trust PUBLIC_KEY (from `auditft keygen`) for reviewer NAME."""
    from auditft.signoff import trust
    from auditft.signoff.identity import author_name

    entry = trust.add(reports, name, public_key, actor=author_name(actor), replace=replace)
    click.echo(f"trusted {entry['name']}: {entry['fingerprint']} (in {trust.store_path(reports)})")


@trust_group.command(name="list")
@REPORTS
def trust_list(reports: Path) -> None:
    """List the trusted reviewers and their key fingerprints."""
    from auditft.signoff import trust
    from auditft.signoff.identity import printable

    entries = trust.load(reports)
    if not entries:
        click.echo(f"no trusted keys in {trust.store_path(reports)}")
    for entry in sorted(entries.values(), key=lambda e: e["name"]):
        click.echo(f"{printable(entry['name'])}\t{entry['fingerprint']}\tadded {entry['added_at']} by "
                   f"{printable(entry['added_by'])}")
