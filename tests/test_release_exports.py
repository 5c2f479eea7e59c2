"""Where a released adapter goes next, checked with other people's libraries, not ours:
the Hub folder's README parses with huggingface_hub and its model-index holds the checks that
ran; peft reads the adapter where the Hub expects it; the signed decisions are DSSE in-toto
envelopes securesystemslib verifies against the trust store's keys; the folder's model.sig is
verified by sigstore's model_signing, and both catch a changed byte."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.cli import cli
from auditft.signoff import clock
from auditft.signoff.clock import parse_iso
from auditft.signoff.review import load_review


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _released(run: Path, registry: Path, monkeypatch, signer_key: Path, *extra: str) -> Path:
    result = invoke("approve", run, "--reviewer", "signer", "--comment", "read the report", "--key", signer_key)
    assert result.exit_code == 0, result.output
    later = parse_iso(load_review(run).gated["time"]) + timedelta(hours=25)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    result = invoke("release", run, "--to", registry, *extra)
    assert result.exit_code == 0, result.output
    return registry / "passed" / run.name


@pytest.fixture
def hub_release(runs, tmp_path, monkeypatch, signer_key):
    return runs["passed"], _released(runs["passed"], tmp_path / "registry", monkeypatch, signer_key, "--format", "hf")


def test_the_hub_folder_card_parses_with_huggingface_hub_and_carries_the_checks_that_ran(hub_release):
    from huggingface_hub import ModelCard, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    run, folder = hub_release
    card = ModelCard.load(folder / "README.md")  # a Path: read from disk, never the network
    report = json.loads((run / "report.json").read_text())
    assert card.data.library_name == "peft" and "auditft" in card.data.tags
    assert card.data.model_name == run.name
    assert card.data.base_model is None  # a local base model: nothing on the Hub to link to
    name, results = model_index_to_eval_results(metadata_load(folder / "README.md")["model-index"])
    claimed = {(r.metric_type, r.metric_value) for r in results}
    ran = {(c["metric"], c["value"]) for c in report["checks"] if isinstance(c["value"], (int, float))
           and not isinstance(c["value"], bool) and c["status"] != "error"}
    assert claimed == ran and name == run.name
    assert "approved by **signer**" in card.text and "signed with a trusted key" in card.text


def test_the_hub_folder_is_the_approved_bytes_in_the_hubs_layout(hub_release):
    from peft import PeftConfig

    run, folder = hub_release
    manifest = json.loads((run / "manifest.json").read_text())
    for rel, digest in manifest["adapter"].items():  # adapter files at the top, where peft looks
        where = folder / ("auditft/adapter/README.md" if rel == "README.md" else rel)
        assert __import__("hashlib").sha256(where.read_bytes()).hexdigest() == digest, rel
    assert PeftConfig.from_pretrained(str(folder)).peft_type.value == "LORA"
    for rel in ("report.json", "manifest.json", "compliance.md", "model_card.md", "suite.yaml", "signoff.jsonl"):
        assert (folder / "auditft" / rel).is_file(), rel
    assert "RELEASED" in (folder / "auditft" / "report.html").read_text()
    assert not [p for p in folder.rglob(".*")]  # nothing hidden for upload_folder to skip or publish
    released = [e for e in load_review(run).events if e["type"] == "released"][0]
    assert released["format"] == "hf"
    assert invoke("verify", run).exit_code == 0


def _dsse_key(reports: Path, reviewer: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.signer import SSlibKey

    from auditft.signoff.trust import trusted_key

    public = trusted_key(reports, reviewer)
    return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(base64.b64decode(public)))


def test_signed_decisions_are_dsse_envelopes_securesystemslib_verifies(hub_release):
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    run, folder = hub_release
    key = _dsse_key(run.parent, "signer")  # the trust store's key: the root of trust is not the folder
    attestations = folder / "auditft" / "attestations"
    names = sorted(p.name for p in attestations.glob("*.dsse.json"))
    assert names[-1] == "gate.dsse.json" and names[0].endswith("-approved.dsse.json")
    review = load_review(run)
    for name in names:
        envelope = Envelope.from_dict(json.loads((attestations / name).read_text()))
        assert envelope.payload_type == "application/vnd.in-toto+json"
        envelope.verify([key], 1)
        statement = json.loads(envelope.payload)
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
        assert subjects["report.json"] == review.gated["report_sha256"]
    gate = json.loads(Envelope.from_dict(json.loads((attestations / "gate.dsse.json").read_text())).payload)
    assert gate["predicate"]["verdict"] == "passed"
    assert {c["id"] for c in gate["predicate"]["checks"]} == {f"{c['audit']}:{c['metric']}" for c in review.report["checks"]}
    keys = json.loads((attestations / "keys.json").read_text())
    assert keys["signer"]["keyid"] == key.keyid
    # a changed verdict no longer verifies
    tampered = json.loads((attestations / "gate.dsse.json").read_text())
    tampered["payload"] = base64.b64encode(json.dumps({**gate, "predicate": {**gate["predicate"], "verdict": "x"}})
                                           .encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(tampered).verify([key], 1)


def test_the_released_folder_verifies_with_model_signing_and_a_changed_byte_fails(runs, tmp_path, monkeypatch,
                                                                                  signer_key):
    from model_signing import verifying

    run = runs["passed"]
    folder = _released(run, tmp_path / "registry", monkeypatch, signer_key)  # the default layout signs too
    public = run.parent / "release-signing.pub.pem"
    assert (run.parent / "release-signing.key.pem").stat().st_mode & 0o077 == 0
    verifier = verifying.Config().use_elliptic_key_verifier(public_key=public)
    verifier.verify(folder, folder / "model.sig")
    weights = folder / "adapter" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="Hash mismatch"):
        verifier.verify(folder, folder / "model.sig")


def test_an_unsigned_approval_writes_no_attestation(runs, tmp_path, monkeypatch):
    run = runs["passed"]
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "fine").exit_code == 0
    assert not (run.parent / "attestations" / run.name).exists()
    later = parse_iso(load_review(run).gated["time"]) + timedelta(hours=25)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert invoke("release", run, "--to", tmp_path / "registry").exit_code == 0
    folder = tmp_path / "registry" / "passed" / run.name
    assert not (folder / "attestations").exists() and (folder / "model.sig").is_file()
