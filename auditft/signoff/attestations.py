"""Signed attestations anyone can verify without auditft: in-toto v1 statements in DSSE
envelopes, signed with the reviewer's ed25519 key (securesystemslib, a well-kept DSSE
implementation; any DSSE verifier with the reviewer's public key checks them).

When a reviewer decides with ``--key`` (approve, reject, waive), two envelopes are written to
``<reports>/attestations/<run_id>/``, outside the run directory (a file added to a finished run
would fail ``auditft verify``):

* ``gate.dsse.json``: the gate's decision (verdict, every check with its value, interval and
  status, the report's sha256), over the artefacts the gate bound. One envelope per run; each
  signing reviewer adds a signature to it, so it carries everyone who vouched for that decision;
* ``<seq>-<decision>.dsse.json``: the decision itself (who, when, what they said, the check a
  waiver accepts), over the artefacts an approval binds to, with the ledger event's seq and hash.

``auditft release`` copies the folder into the released folder (``attestations/``), with
``keys.json``: the reviewers' public keys as the trust store held them at release.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.fsutil import atomic_write_text

if TYPE_CHECKING:
    from auditft.signoff.review import Review

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
GATE_PREDICATE = "https://auditft.dev/attestation/gate/v1"
DECISION_PREDICATE = "https://auditft.dev/attestation/decision/v1"
FOLDER = "attestations"


def folder_for(reports: Path, run_id: str) -> Path:
    return Path(reports) / FOLDER / run_id


def statement(subjects: dict[str, str], predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto v1 Statement: one subject per artefact (path and sha256)."""
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())],
            "predicateType": predicate_type, "predicate": predicate}


def gate_statement(review: Review) -> dict[str, Any]:
    gated = review.gated
    checks = [{"id": f"{c['audit']}:{c['metric']}", "status": c["status"], "value": c.get("value"),
               "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"), "op": c.get("op"),
               "threshold": c.get("threshold")} for c in review.report.get("checks") or []]
    return statement(gated.get("artefacts") or {}, GATE_PREDICATE, {
        "run_id": review.run_id, "suite": review.report.get("suite"), "verdict": gated.get("verdict"),
        "report_sha256": gated.get("report_sha256"), "gated_at": gated.get("time"),
        "ledger": {"seq": gated.get("seq"), "hash": gated.get("hash")}, "checks": checks})


def decision_statement(review: Review, event: dict[str, Any]) -> dict[str, Any]:
    subjects = event.get("artefacts") or review.gated.get("artefacts") or {}
    fields = {k: event.get(k) for k in ("actor", "at", "meaning", "comment", "reason", "check") if event.get(k)}
    return statement(subjects, DECISION_PREDICATE, {
        "decision": event["type"], **fields, "run_id": review.run_id, "suite": review.report.get("suite"),
        "report_sha256": event.get("report_sha256") or review.gated.get("report_sha256"),
        "gate_verdict": review.gated.get("verdict"), "ledger": {"seq": event.get("seq"), "hash": event.get("hash")}})


def _signer(key_path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.signer import CryptoSigner

    from auditft.signoff.signing import private_key_bytes

    return CryptoSigner(Ed25519PrivateKey.from_private_bytes(private_key_bytes(key_path)))


def sign(statement_: dict[str, Any], key_path: Path, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DSSE envelope of ``statement_`` signed with ``key_path``; with ``envelope`` (the same
    payload), this key's signature is added to the ones it has (once per key)."""
    from securesystemslib.dsse import Envelope

    payload = json.dumps(statement_, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if envelope is not None:
        found = Envelope.from_dict(json.loads(json.dumps(envelope)))  # from_dict rewrites what it is given
        if found.payload != payload or found.payload_type != PAYLOAD_TYPE:
            raise ValueError("the envelope holds another statement")
        env = found
    else:
        env = Envelope(payload, PAYLOAD_TYPE, {})
    signer = _signer(key_path)
    if signer.public_key.keyid not in env.signatures:
        env.sign(signer)
    return dict(env.to_dict())


def attest_decision(review: Review, event: dict[str, Any], key_path: Path) -> list[Path]:
    """Write (or countersign) the gate envelope and the decision's own envelope."""
    folder = folder_for(review.run_dir.parent, review.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    gate_path = folder / "gate.dsse.json"
    existing = json.loads(gate_path.read_text(encoding="utf-8")) if gate_path.is_file() else None
    atomic_write_text(gate_path, json.dumps(sign(gate_statement(review), key_path, existing), indent=2) + "\n")
    decision_path = folder / f"{event.get('seq')}-{event['type']}.dsse.json"
    atomic_write_text(decision_path, json.dumps(sign(decision_statement(review, event), key_path), indent=2) + "\n")
    return [gate_path, decision_path]


def public_keys(reviewers: list[str], reports: Path) -> dict[str, dict[str, str]]:
    """``keys.json`` for a released folder: reviewer -> raw public key (base64 and hex) and the
    DSSE keyid securesystemslib computes, as the trust store holds them now."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.signer import SSlibKey

    from auditft.signoff import trust

    out: dict[str, dict[str, str]] = {}
    for name in reviewers:
        public = trust.trusted_key(reports, name)
        if public is None:
            continue
        raw = base64.b64decode(public)
        key = SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(raw))
        out[name] = {"public_key_base64": public, "public_key_hex": raw.hex(), "keyid": key.keyid}
    return out
