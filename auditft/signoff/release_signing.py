"""The released folder's signature, in the format sigstore's ``model_signing`` verifies.

``model_signing`` signs a folder as an in-toto statement of every file's sha256 inside a
sigstore bundle (``model.sig``); with a local key it needs no network. It takes ECDSA keys
only (not the reviewers' ed25519 keys), so the registry has its own release key: an ECDSA
P-256 key pair beside the ledger (``release-signing.key.pem``, mode 600, and
``release-signing.pub.pem``), made on the first release, or the PEM private key
``$AUDITFT_RELEASE_KEY`` names. Verifying needs only the public key and ``model_signing``:

    model_signing verify key --signature DIR/model.sig --public_key release-signing.pub.pem DIR

``model_signing`` is in the ``export`` extra: without it, a release carries no ``model.sig``
and says so on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from auditft.errors import AuditftError

KEY_ENV = "AUDITFT_RELEASE_KEY"
PRIVATE_NAME = "release-signing.key.pem"
PUBLIC_NAME = "release-signing.pub.pem"
SIGNATURE = "model.sig"


def release_key(reports: Path) -> tuple[Path, Path]:
    """(private PEM, public PEM): ``$AUDITFT_RELEASE_KEY`` (its public half written beside it
    when missing), else the pair beside the ledger, made when absent."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    chosen = os.environ.get(KEY_ENV)
    private = Path(chosen) if chosen else Path(reports).resolve() / PRIVATE_NAME
    public = private.with_name(private.name.replace(".key.pem", "") + ".pub.pem") if chosen else \
        Path(reports).resolve() / PUBLIC_NAME
    if not private.exists():
        if chosen:
            raise AuditftError(f"{private}: the release key {KEY_ENV} names does not exist")
        key = ec.generate_private_key(ec.SECP256R1())
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        private.chmod(0o600)
    if not public.exists():
        try:
            loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise AuditftError(f"{private}: not a PEM private key without a password ({exc})") from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise AuditftError(f"{private}: model_signing needs an ECDSA key (P-256, P-384 or P-521)")
        public.write_bytes(loaded.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def sign_folder(folder: Path, reports: Path) -> Path | None:
    """Sign every file of ``folder`` into ``folder/model.sig``; None when model_signing is
    not installed (a line on stderr says so)."""
    try:
        from model_signing import hashing, signing
    except ImportError:
        print("warning: no model.sig in the release: sigstore's model_signing is not installed "
              "(pip install 'auditft[export]')", file=sys.stderr)
        return None
    private, _ = release_key(reports)
    target = Path(folder) / SIGNATURE
    config = hashing.Config().set_ignored_paths(paths=[SIGNATURE], ignore_git_paths=False)
    signing.Config().use_elliptic_key_signer(private_key=private).set_hashing_config(config).sign(folder, target)
    target.chmod(0o644)
    return target
