"""The trust store: which public key speaks for which reviewer, kept outside every run.

A run's ``report.json`` and ``suite.yaml`` name the reviewers' keys, but anyone who can
rewrite a run could swap a key there, re-hash, re-sign with their own key and re-chain an
unkeyed ledger. So the keys that ``verify`` believes live in ``trusted_keys.json`` beside the
ledger (or at ``$AUDITFT_TRUST_STORE``, e.g. in the user's config), added only by
``auditft trust add`` (each addition is also a ``trusted`` event in the ledger). A suite may
list only keys the store already trusts; the report records their fingerprints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from auditft.signoff import identity
from auditft.errors import AuditftError, IntegrityError
from auditft.fsutil import atomic_write_text

STORE_NAME = "trusted_keys.json"
STORE_ENV = "AUDITFT_TRUST_STORE"


class TrustError(AuditftError):
    """A key or name that cannot be trusted as given (exit 2)."""


def store_path(reports: Path) -> Path:
    override = os.environ.get(STORE_ENV)
    return Path(override) if override else Path(reports).resolve() / STORE_NAME


def fingerprint(public_key: str) -> str:
    return "SHA256:" + hashlib.sha256(_raw(public_key)).hexdigest()[:32]


def _raw(public_key: str) -> bytes:
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raise TrustError("not a base64 ed25519 public key") from None
    if len(raw) != 32:
        raise TrustError(f"an ed25519 public key has 32 bytes, this one {len(raw)}")
    return raw


def load(reports: Path) -> dict[str, dict[str, Any]]:
    """Trusted reviewers by comparison key (``identity.key``)."""
    path = store_path(reports)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        reviewers = data["reviewers"]
        assert isinstance(reviewers, dict)
    except (OSError, ValueError, KeyError, AssertionError):
        raise IntegrityError(f"{path}: unreadable trust store") from None
    return reviewers


def trusted_key(reports: Path, name: str) -> str | None:
    entry = load(reports).get(identity.key(name))
    return entry["public_key"] if entry else None


def add(reports: Path, name: str, public_key: str, *, actor: str, replace: bool = False) -> dict[str, Any]:
    """Trust ``public_key`` for reviewer ``name``; recorded in the ledger beside the store."""
    from auditft.signoff.clock import now_iso
    from auditft.signoff.ledger import Ledger, LEDGER_NAME

    name = identity.person(name, "reviewer")
    actor = identity.person(actor, "--actor")
    print_ = fingerprint(public_key)
    reviewers = load(reports)
    current = reviewers.get(identity.key(name))
    if current and current["public_key"] != public_key and not replace:
        raise TrustError(f"{name!r} is trusted with another key ({current['fingerprint']}); pass --replace to "
                         "change it (the change is recorded)")
    entry = {"name": name, "public_key": public_key, "fingerprint": print_, "added_by": actor, "added_at": now_iso()}
    Ledger(Path(reports).resolve() / LEDGER_NAME).append(
        {"type": "trusted", "actor": actor, "reviewer": name, "fingerprint": print_,
         "replaced": current["fingerprint"] if current and current["public_key"] != public_key else None})
    reviewers[identity.key(name)] = entry
    path = store_path(reports)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"reviewers": reviewers}, indent=2, sort_keys=True) + "\n")
    return entry


def check_policy(reports: Path, reviewer_keys: dict[str, str], source: str) -> dict[str, str]:
    """Every key a suite lists must be the store's key for that reviewer. Returns their
    fingerprints (recorded in the report)."""
    prints = {}
    for name, public in reviewer_keys.items():
        where = f"{source}: release.reviewer_keys.{name}"
        try:
            prints[name] = fingerprint(public)
        except TrustError as exc:
            raise TrustError(f"{where}: {exc}") from None
        trusted = trusted_key(reports, name)
        if trusted is None:
            raise TrustError(f"{where}: not in the trust store {store_path(reports)}; a reviewer's key is trusted "
                             f"with `auditft trust add {name} KEY --reports {reports}` before a suite may list it")
        if trusted != public:
            raise TrustError(f"{where}: differs from the key the trust store holds for {name!r} "
                             f"({fingerprint(trusted)})")
    return prints
