"""The whole sign-off story: approvals, four-eyes, waivers, the review window, release,
tampering with bytes and with the ledger."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.signoff import clock
from auditft.signoff.decisions import approve, reject
from auditft.signoff.events import bound_artefacts, record, run_events
from auditft.signoff.review import Review, load_review
from auditft.cli import cli
from auditft.signoff.clock import parse_iso
from auditft.signoff.release import releasable, release


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def _gate_time(run_dir: Path):
    return parse_iso(load_review(run_dir).gated["time"])


def test_the_whole_story(runs, tmp_path, monkeypatch):
    run = runs["passed"]
    registry = tmp_path / "registry"
    assert json.loads((run / "report.json").read_text())["verdict"] == "passed"
    # the author may not approve their own run (four-eyes)
    result = invoke("approve", run, "--reviewer", "alice", "--comment", "mine")
    assert result.exit_code == 4 and "four-eyes" in result.output
    # a reviewer approves; the approval binds to the report and adapter hashes
    result = invoke("approve", run, "--reviewer", "bob", "--comment", "read the report, fine")
    assert result.exit_code == 0, result.output
    approval = load_review(run).approvals[0]
    manifest = json.loads((run / "manifest.json").read_text())
    assert approval["report_sha256"] == manifest["artefacts"]["report.json"]
    assert {k: v for k, v in approval["artefacts"].items() if k.startswith("adapter/")} == {
        f"adapter/{k}": v for k, v in manifest["adapter"].items()}
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "again").exit_code == 4
    # before the review window ends, release is refused and says why
    result = invoke("release", run, "--to", registry)
    assert result.exit_code == 4 and "review window ends" in result.output
    assert not registry.exists()
    # the window passes (injected clock)
    later = _gate_time(run) + timedelta(hours=25)
    monkeypatch.setattr(clock, "utcnow", lambda: later)  # the one clock: windows, the ledger's dates
    result = invoke("release", run, "--to", registry)
    assert result.exit_code == 0, result.output
    shipped = registry / "passed" / run.name
    assert (shipped / "adapter" / "adapter_model.safetensors").read_bytes() == (
        run / "adapter" / "adapter_model.safetensors").read_bytes()
    assert "RELEASED" in (shipped / "report.html").read_text()
    # the run's whole record (its cache seals included: the release intent comes before the copy)
    assert [t for line in (shipped / "signoff.jsonl").read_text().splitlines()
            if (t := json.loads(line)["type"]) != "sealed"] == ["created", "gated", "approved", "release_intent"]
    assert [e["type"] for e in load_review(run).events if e["type"] != "sealed"] == [
        "created", "gated", "approved", "release_intent", "released"]
    # releasing again is refused and never overwrites
    assert invoke("release", run, "--to", registry).exit_code == 4
    assert invoke("status", run, "--format", "json").output and json.loads(
        invoke("status", run, "--format", "json").output)["state"] == "released"
    # one adapter byte changed: verify and release both exit 6
    weights = run / "adapter" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = invoke("verify", run)
    assert result.exit_code == 6 and "adapter/adapter_model.safetensors: bytes changed" in result.output
    assert invoke("release", run, "--to", tmp_path / "elsewhere").exit_code == 6


def test_release_requires_approvals_and_refuses_changed_bytes(runs, tmp_path, monkeypatch):
    run = runs["passed"]
    later = _gate_time(run) + timedelta(days=2)
    reasons = releasable(run, later)
    assert reasons == ["0 of 1 required approvals"]
    approve(run, "bob", "ok", when=later)
    assert releasable(run, later) == []
    # approval expiry (30d default)
    assert any("expired" in r for r in releasable(run, later + timedelta(days=31)))
    (run / "model_card.md").write_text("tampered")
    with pytest.raises(Exception) as info:
        release(run, tmp_path / "reg", actor="carol", when=later)
    assert getattr(info.value, "exit_code", None) == 6


def test_blocked_run_needs_waivers_before_approval(runs):
    run = runs["blocked"]
    report = json.loads((run / "report.json").read_text())
    assert report["verdict"] == "blocked"
    result = invoke("approve", run, "--reviewer", "bob", "--comment", "ok")
    assert result.exit_code == 4 and "accuracy:macro_f1" in result.output
    assert invoke("waive", run, "accuracy:accuracy", "--reviewer", "bob", "--reason", "x").exit_code == 4  # passed
    assert invoke("waive", run, "macro_f1", "--reviewer", "alice", "--reason", "x").exit_code == 4  # four-eyes
    result = invoke("waive", run, "macro_f1", "--reviewer", "carol", "--reason", "toy data, known <b>limit</b>")
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "WAIVED by carol" in html and "known &lt;b&gt;limit&lt;/b&gt;" in html
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "with the waiver").exit_code == 0
    assert json.loads(invoke("status", run, "--format", "json").output)["state"] == "approved"


def test_rejection_stands(runs, tmp_path):
    run = runs["passed"]
    assert invoke("reject", run, "--reviewer", "dave", "--comment", "not convinced").exit_code == 0
    result = invoke("approve", run, "--reviewer", "bob", "--comment", "ok")
    assert result.exit_code == 4 and "rejected by 'dave'" in result.output
    assert "REJECTED" in (run / "report.html").read_text()


def _ledger_lines(run: Path) -> tuple[Path, list[str]]:
    path = run.parent / "ledger.jsonl"
    return path, path.read_text().splitlines()


@pytest.mark.parametrize("tamper", ["edit", "delete-middle", "delete-last"])
def test_ledger_tampering_is_detected(runs, tamper):
    run = runs["passed"]
    reject(run, "dave", "no")  # the last line: a rejection someone may want gone
    path, lines = _ledger_lines(run)
    if tamper == "edit":
        event = json.loads(lines[2])
        event["actor"] = "mallory"
        lines[2] = json.dumps(event, sort_keys=True)
    elif tamper == "delete-middle":
        del lines[1]
    else:
        del lines[-1]
    path.write_text("\n".join(lines) + "\n")
    result = invoke("verify", run)
    assert result.exit_code == 6, result.output
    expected = {"edit": "line 3: content does not match its hash",
                "delete-middle": "line 2: does not link",
                "delete-last": "(rejected by dave)"}[tamper]
    assert expected in result.output
    # and no approval is accepted on a broken ledger
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 6


def test_hmac_key_makes_reforging_detectable(runs, monkeypatch):
    run = runs["passed"]
    monkeypatch.setenv("AUDITFT_LEDGER_KEY", "s3cret")
    # lines written before the key was set are reported: the key must be set from the start
    assert "HMAC missing" in invoke("verify", run).output
    path, lines = _ledger_lines(run)
    from auditft.signoff.ledger import Ledger

    rebuilt = Ledger(path.with_name("rebuilt.jsonl"), key=b"s3cret")
    for line in lines:
        event = json.loads(line)
        rebuilt.append({k: v for k, v in event.items() if k not in ("seq", "time", "prev", "hash", "hmac")})
    assert rebuilt.verify() == []
    forged = Ledger(rebuilt.path, key=b"wrong-key")
    # the keyed ledger names its key's id in its first line, so a wrong key is named as such
    assert "is not this ledger's key" in forged.verify()[0].problem


def test_listed_reviewer_must_sign_and_forgery_is_caught(runs, tmp_path, signer_key):
    run = runs["passed"]
    from auditft.signoff.signing import generate_keypair

    eve_key, _ = generate_keypair(tmp_path / "keys", "eve")
    result = invoke("approve", run, "--reviewer", "signer", "--comment", "ok")
    assert result.exit_code == 4 and "sign with --key" in result.output
    result = invoke("approve", run, "--reviewer", "signer", "--comment", "ok", "--key", eve_key)
    assert result.exit_code == 4 and "not the key the trust store holds" in result.output
    result = invoke("approve", run, "--reviewer", "signer", "--comment", "ok", "--key", signer_key)
    assert result.exit_code == 0, result.output
    assert invoke("verify", run).exit_code == 0
    assert "[signed with a trusted ed25519 key]" in (run / "report.html").read_text()
    # someone who can rewrite every file forges a second approval by 'signer' with eve's key:
    # the chain is rebuilt consistently, but the signature does not match the listed key
    from auditft.signoff.signing import sign

    forged = {"type": "approved", "run_id": run.name, "actor": "signer", "comment": "forged",
              "report_sha256": "x", "artefacts": bound_artefacts(run)}
    forged["signature"] = sign(forged, eve_key)
    record(run, forged)
    result = invoke("verify", run)
    assert result.exit_code == 6 and "lacks a valid signature by their trusted key" in result.output


def test_policy_is_bound_content(runs):
    run = runs["passed"]
    report = json.loads((run / "report.json").read_text())
    report["release"]["four_eyes"] = False
    (run / "report.json").write_text(json.dumps(report))
    result = invoke("approve", run, "--reviewer", "alice", "--comment", "mine now")
    assert result.exit_code == 6 and "report.json: bytes changed" in result.output


def test_signature_verifies_and_forgery_fails(tmp_path):
    from auditft.signoff.ledger import Ledger
    from auditft.signoff.signing import generate_keypair, sign, verify_signature

    key, public = generate_keypair(tmp_path, "bob")
    event = {"type": "approved", "run_id": "r", "actor": "bob", "comment": "ok"}
    event["signature"] = sign(event, key)
    ledger = Ledger(tmp_path / "l.jsonl", key=None)
    stored = ledger.append(event)
    assert verify_signature(stored, public)
    assert ledger.verify() == []
    forged = {**stored, "comment": "changed"}
    assert not verify_signature(forged, public)


def test_verify_on_not_a_run(tmp_path):
    result = invoke("verify", tmp_path)
    assert result.exit_code == 2 and "not an auditft run directory" in result.output


def test_report_rerender_shows_current_state(runs):
    run = runs["passed"]
    assert "AWAITING REVIEW" in (run / "report.html").read_text()
    approve(run, "bob", "ok")
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "APPROVED" in html and "approved</strong> by bob" in html
    assert invoke("verify", run).exit_code == 0  # re-rendering does not touch the bound content


def test_concurrent_reviews_leave_a_valid_chain(runs):
    import subprocess
    import sys

    run = runs["passed"]
    code = ("import sys; from auditft.cli import main; sys.argv = ['auditft'] + sys.argv[1:]; main()")
    procs = [subprocess.Popen([sys.executable, "-c", code, "reject" if i % 4 == 3 else "approve", str(run),
                               "--reviewer", f"r{i}", "--comment", f"c{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    codes = [p.wait(timeout=120) for p in procs]
    assert all(c in (0, 4) for c in codes), [p.stderr.read() for p in procs]
    assert invoke("verify", run).exit_code == 0
    events = run_events(run)
    assert len([e for e in events if e["type"] != "sealed"]) == 2 + codes.count(0)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_edited_run_record_with_its_old_hash_is_caught(runs):
    """Turning the run's own `created` event into an approval, keeping the old hash field."""
    run = runs["passed"]
    path = run / "events.jsonl"
    lines = path.read_text().splitlines()
    event = json.loads(lines[0])
    event.update(type="approved", actor="carol", artefacts=bound_artefacts(run))
    lines[0] = json.dumps(event, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    result = invoke("verify", run)
    assert result.exit_code == 6 and "does not match its own hash" in result.output


def test_replayed_signed_approval_does_not_refresh_expiry(runs, signer_key):
    run = runs["passed"]
    start = _gate_time(run) + timedelta(days=2)
    first = approve(run, "signer", "ok", key=signer_key, when=start)
    much_later = start + timedelta(days=40)
    assert any("expired" in r for r in releasable(run, much_later))
    replay = {k: v for k, v in first.items() if k not in ("seq", "time", "prev", "hash", "hmac")}
    record(run, replay, when=much_later)  # same signed payload, fresh ledger time
    assert any("expired" in r for r in releasable(run, much_later))
    result = invoke("verify", run)
    assert result.exit_code == 6 and "(replayed)" in result.output


def test_file_added_to_the_adapter_after_the_gate_is_caught(runs, tmp_path, monkeypatch):
    run = runs["passed"]
    later = _gate_time(run) + timedelta(days=2)
    approve(run, "bob", "ok", when=later)
    (run / "adapter" / ".extra.safetensors").write_bytes(b"smuggled")
    result = invoke("verify", run)
    assert result.exit_code == 6 and ".extra.safetensors: file not recorded at the gate" in result.output
    with pytest.raises(Exception) as info:
        release(run, tmp_path / "reg", actor="carol", when=later)
    assert getattr(info.value, "exit_code", None) == 6 and not (tmp_path / "reg" / "passed").exists()


def test_blocked_run_without_checks_cannot_be_approved(tmp_path):
    review = Review(tmp_path, {"checks": [], "verdict": "blocked", "release": {}}, [], {})
    assert review.unwaived() and review.state() == "blocked"
    passed = Review(tmp_path, {"checks": [], "verdict": "passed", "release": {}}, [], {})
    assert passed.unwaived() == []


def test_crash_between_ledger_and_run_record_is_repaired_safely(runs):
    """A crash after the ledger append but before the run's copy: verify flags it, the next
    sign-off action completes the copy from the verified ledger."""
    from auditft.signoff.clock import now_iso
    from auditft.signoff.layout import ledger_for

    run = runs["passed"]
    gated = load_review(run).gated
    ledger_for(run).append({"type": "waived", "run_id": run.name, "actor": "x", "check": "none:none",
                            "reason": "crash test", "at": now_iso(), "report_sha256": gated["report_sha256"]})
    result = invoke("verify", run)
    assert result.exit_code == 6 and "missing from the run's own record" in result.output
    assert invoke("reject", run, "--reviewer", "dave", "--comment", "after the crash").exit_code == 0
    assert [e["type"] for e in run_events(run) if e["type"] != "sealed"] == [
        "created", "gated", "waived", "rejected"]
    assert invoke("verify", run).exit_code == 0


def test_a_rendering_holds_the_run_lock_so_no_integrity_check_sees_its_temporary_file(runs, monkeypatch):
    """A re-render writes a temporary ``.report.html.*.tmp`` beside the bound files; a concurrent
    approval's integrity check that lists the folder then would see a file not recorded at the
    gate (exit 6). So the rendering holds the run's lock, like every sign-off action."""
    import fcntl

    from auditft.signoff import rendering

    run = runs["passed"]
    seen = []
    real = rendering.atomic_write_text

    def write(path, text):
        with open(run / ".lock", "a+") as other:  # what another process would do
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append("locked")
            else:
                fcntl.flock(other.fileno(), fcntl.LOCK_UN)
                seen.append("unlocked")
        real(path, text)

    monkeypatch.setattr(rendering, "atomic_write_text", write)
    rendering.rerender(run)
    assert seen == ["locked"]
    assert invoke("verify", run).exit_code == 0
