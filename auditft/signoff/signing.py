"""Optional ed25519 signatures on reviewer events (the ``cryptography`` package).

A reviewer signs the event's payload (everything but the chain fields) with their private
key; the suite's release policy lists reviewers' public keys (``reviewer_keys``), so an
approval by a listed reviewer cannot be forged by editing files, even by someone who can
rewrite the whole ledger. Keys are raw 32-byte ed25519 keys, base64-encoded.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from auditft.errors import AuditftError
from auditft.signoff.encoding import canonical, payload


def generate_keypair(directory: Path, name: str) -> tuple[Path, str]:
    """Write ``NAME.key`` (private, mode 600) in ``directory``; return its path and the public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.key"
    if path.exists():
        raise AuditftError(f"{path}: exists; refusing to overwrite a private key")
    path.write_text(base64.b64encode(raw).decode() + "\n", encoding="ascii")
    path.chmod(0o600)
    return path, public_key_of(path)


def private_key_bytes(path: Path) -> bytes:
    """The raw 32-byte ed25519 private key in an auditft key file (one-line error otherwise)."""
    return bytes(_private(path).private_bytes_raw())


def _private(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        raw = base64.b64decode(Path(path).read_text(encoding="ascii").strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (OSError, ValueError) as exc:
        raise AuditftError(f"{path}: not an auditft ed25519 private key ({exc})") from None


def public_key_of(path: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    public = _private(path).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(public).decode()


def sign(event: dict[str, Any], key_path: Path) -> dict[str, str]:
    """The ``signature`` field for ``event`` (its payload, canonical JSON)."""
    key = _private(key_path)
    return {"public_key": public_key_of(key_path),
            "value": base64.b64encode(key.sign(canonical(payload(event)))).decode()}


def verify_signature(event: dict[str, Any], expected_public_key: str | None = None) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signature = event.get("signature")
    if not isinstance(signature, dict):
        return False
    public = signature.get("public_key")
    if not public or (expected_public_key is not None and public != expected_public_key):
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
        key.verify(base64.b64decode(signature.get("value", "")), canonical(payload(event)))
    except (InvalidSignature, ValueError):
        return False
    return True
