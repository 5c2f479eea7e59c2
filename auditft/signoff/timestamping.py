"""Optional RFC 3161 timestamps: proof of time from a time-stamping authority (TSA).

Every ledger time is the appending machine's clock. Teams with a TSA set
``AUDITFT_TSA_URL`` (the TSA's HTTP endpoint) and ``AUDITFT_TSA_ROOTS`` (a PEM file with the
root certificate(s) their TSA chains to). Then:

* the decisive events (``gated``, ``approved``, ``rejected``, ``waived``, ``release_intent``,
  ``released``) are timestamped right after they are appended: the token covers the exact
  ledger line (so its seq, time, chain link and content) and is kept beside the ledger as
  ``timestamps/<seq>.tsr``;
* ``release`` checks the review window against the TSA's times, from the ``gated`` token
  to the ``release_intent`` token, so a releaser's clock set ahead cannot pass it;
* ``verify`` checks each token against the roots (signature, chain, the time-stamping key
  usage, the line it covers) and that the TSA's time is within the clock skew of the
  event's own time; with a TSA configured, a decisive event without a token is a problem.

Tokens are requested and verified with ``rfc3161-client`` (the sigstore project's client).
"""

from __future__ import annotations

import os
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError

URL_ENV, ROOTS_ENV = "AUDITFT_TSA_URL", "AUDITFT_TSA_ROOTS"
STAMPED = ("gated", "approved", "rejected", "waived", "release_intent", "released")
FOLDER = "timestamps"


def configured() -> bool:
    return bool(os.environ.get(URL_ENV))


def _client() -> Any:
    try:
        import rfc3161_client
    except ImportError:
        raise IntegrityError("RFC 3161 timestamps need rfc3161-client: pip install 'auditft[tsa]'") from None
    return rfc3161_client


def token_path(ledger_path: Path, seq: int) -> Path:
    return Path(ledger_path).parent / FOLDER / f"{seq}.tsr"


def _line(ledger_path: Path, seq: int) -> bytes:
    """The stored bytes of ledger line ``seq`` (what its token covers)."""
    from auditft.signoff.encoding import split_lines

    lines = split_lines(Path(ledger_path).read_text(encoding="utf-8"))
    return lines[seq - 1].encode("utf-8")


def _roots() -> list[Any]:
    from cryptography import x509

    path = os.environ.get(ROOTS_ENV)
    if not path:
        raise IntegrityError(f"{URL_ENV} is set but {ROOTS_ENV} (the TSA's root certificates, PEM) is not")
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: cannot read the TSA root certificates ({exc})") from None


def stamp_line(ledger_path: Path, record: dict[str, Any], line: str) -> None:
    """Called by ``Ledger.append`` under its lock, before the line is written: fetch and keep
    a token over ``line`` when a TSA is configured. A TSA that cannot be reached or answers
    with a token that does not verify refuses the append (nothing is written)."""
    if not configured() or record.get("type") not in STAMPED:
        return
    from auditft.fsutil import atomic_write_bytes

    client = _client()
    HashAlgorithm, TimestampRequestBuilder = client.HashAlgorithm, client.TimestampRequestBuilder
    VerificationError, VerifierBuilder = client.VerificationError, client.VerifierBuilder
    decode_timestamp_response = client.decode_timestamp_response

    data = line.encode("utf-8")
    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
    url = os.environ[URL_ENV]
    try:
        http = urllib.request.Request(url, data=request.as_bytes(),
                                      headers={"Content-Type": "application/timestamp-query"})
        with urllib.request.urlopen(http, timeout=30) as answer:  # noqa: S310 (a URL the team configured)
            raw = answer.read()
        response = decode_timestamp_response(raw)
        verifier = VerifierBuilder.from_request(request)
        for root in _roots():
            verifier = verifier.add_root_certificate(root)
        verifier.build().verify_message(response, data)
    except (OSError, ValueError, VerificationError) as exc:
        raise IntegrityError(f"{url}: no valid RFC 3161 timestamp for the {record['type']} event ({exc}); "
                             "nothing was written") from None
    atomic_write_bytes(token_path(ledger_path, record["seq"]), raw)


def token_time(ledger_path: Path, event: dict[str, Any]) -> datetime | None:
    """The TSA's verified time for ``event``, or None (no token, or no TSA configured)."""
    problem, when = check(ledger_path, event)
    return when if problem is None else None


def check(ledger_path: Path, event: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """(problem, TSA time) for one event's token."""
    path = token_path(ledger_path, event["seq"])
    if not path.exists():
        return (f"seq {event['seq']} ({event['type']}) has no RFC 3161 timestamp" if configured() else None), None
    client = _client()
    VerificationError, VerifierBuilder = client.VerificationError, client.VerifierBuilder
    decode_timestamp_response = client.decode_timestamp_response
    try:
        response = decode_timestamp_response(path.read_bytes())
        line = _line(ledger_path, event["seq"])
        roots = _roots()
        errors = []
        for root in roots:
            try:
                VerifierBuilder().add_root_certificate(root).build().verify_message(response, line)
                break
            except VerificationError as exc:
                errors.append(str(exc))
        else:
            return f"{path}: the timestamp does not verify ({'; '.join(errors)})", None
    except (OSError, ValueError, IndexError) as exc:
        return f"{path}: unreadable timestamp ({exc})", None
    return None, response.tst_info.gen_time.astimezone(timezone.utc)
