"""Attacks on the sign-off, each as an auditor tried it from outside (issue 23). Every test
here passed the attack before the fix (exit 0 where it now exits 6, 4 or 2); the docs
(docs/signoff.md, "What is tested") promise exactly these refusals.

Exit codes: 2 invalid input, 4 refused by policy, 6 integrity failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.signoff import ledger as ledger_module
from auditft.signoff.events import bound_artefacts, run_events
from auditft.signoff.review import load_review
from auditft.signoff import release as release_module
from auditft.signoff import clock
from auditft.cli import cli
from auditft.signoff.encoding import content_hash, line_hash, serialise
from auditft.signoff.layout import ledger_for


def invoke(*args: object, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _write_events(path: Path, events: list[dict]) -> None:
    path.write_text("".join(serialise(e) + "\n" for e in events), encoding="utf-8")


def rechain(path: Path, events: list[dict]) -> list[dict]:
    """What someone without a key can always do: rewrite every line consistently."""
    prev, out = "0" * 64, []
    for number, event in enumerate(events, start=1):
        record = {k: v for k, v in event.items() if k not in ("hash", "hmac")}
        record.update(seq=number, prev=prev)
        record["hash"] = content_hash(record)
        line = serialise(record)
        prev = line_hash(line)
        out.append(record)
    _write_events(path, out)
    return out


def _clock(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: when)  # the one clock sign-off reads


def _drop(run_dir: Path, kind: str) -> None:
    path = run_dir / "events.jsonl"
    _write_events(path, [e for e in run_events(run_dir) if e.get("type") != kind])


@pytest.fixture
def releasable(runs):
    """The blocked run, waived and approved: releasable at once (review window 0s)."""
    run = runs["blocked"]
    assert invoke("waive", run, "macro_f1", "--reviewer", "bob", "--reason", "toy").exit_code == 0
    assert invoke("approve", run, "--reviewer", "carol", "--comment", "fine").exit_code == 0
    return run


# 1. a rejection undone by renaming or copying the run folder ---------------------------------

@pytest.mark.parametrize("how", ["mv", "cp -a"])
def test_renamed_or_copied_folder_cannot_shed_a_rejection(releasable, tmp_path, how):
    run = releasable
    assert invoke("reject", run, "--reviewer", "dave", "--comment", "no").exit_code == 0
    other = run.with_name("blocked-20261231-235959-abcdef")
    (shutil.move if how == "mv" else lambda a, b: shutil.copytree(a, b, symlinks=True))(run, other)
    _drop(other, "rejected")
    assert invoke("verify", other).exit_code == 6
    result = invoke("release", other, "--to", tmp_path / "registry")
    assert result.exit_code == 6 and "renamed or copied" in result.output
    assert not (tmp_path / "registry").exists() or not any((tmp_path / "registry").rglob("*.safetensors"))
    assert json.loads(invoke("status", other, "--format", "json").output)["state"] == "integrity_failure"


def test_a_run_moved_to_another_reports_directory_has_no_record(releasable, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = Path(shutil.copytree(releasable, elsewhere / releasable.name, symlinks=True))
    result = invoke("release", moved, "--to", tmp_path / "registry")
    assert result.exit_code == 6 and "no 'gated' event" in result.output


# 2. a waiver or approval copied from another run ---------------------------------------------

def test_events_copied_from_another_run_count_for_nothing(runs, tmp_path, tiny_model_dir):
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.testing import toy_classification_data, write_suite

    first = runs["blocked"]
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "b2.yaml", model_dir=tiny_model_dir, name="blocked", audits=[
        {"kind": "accuracy", "gates": [{"metric": "macro_f1", "min": 0.9999, "rationale": "impossible"}]}])
    pm = make_plugin_manager(entry_points=False, env={})
    second = first.parent / execute(prepare(suite, pm), pm, reports=first.parent, author="alice")["run_id"]
    assert invoke("waive", first, "accuracy:macro_f1", "--reviewer", "bob", "--reason", "first run only").exit_code == 0
    waiver = next(e for e in ledger_for(first).events(first.name) if e["type"] == "waived")
    approval_from_passed = None
    assert invoke("approve", runs["passed"], "--reviewer", "carol", "--comment", "ok").exit_code == 0
    approval_from_passed = next(e for e in ledger_for(first).events(runs["passed"].name) if e["type"] == "approved")
    _write_events(second / "events.jsonl", [*run_events(second), waiver, approval_from_passed])
    # the review is the ledger's, for this run's bound identity: nothing was waived or approved
    review = load_review(second)
    assert review.waivers == {} and review.approvals == [] and review.state() == "blocked"
    result = invoke("verify", second)
    assert result.exit_code == 6 and "belongs to run" in result.output
    assert invoke("approve", second, "--reviewer", "erin", "--comment", "ok").exit_code in (4, 6)
    assert invoke("release", second, "--to", tmp_path / "registry").exit_code in (4, 6)


# 3. a comment with a Unicode line separator bricks the ledger -------------------------------

SEPARATORS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_no_character_splits_a_ledger_line(tmp_path):
    ledger = ledger_module.Ledger(tmp_path / "ledger.jsonl", key=b"")
    for sep in SEPARATORS:
        ledger.append({"type": "note", "run_id": "r", "actor": "a", "comment": f"before{sep}after"})
    assert len(_lines(ledger.path)) == len(SEPARATORS)
    assert [e["comment"] for e in ledger.events()] == [f"before{sep}after" for sep in SEPARATORS]
    assert ledger.verify() == []
    assert ledger.path.read_bytes().isascii()


def test_a_line_separator_in_a_comment_keeps_every_run_working(runs):
    run = runs["passed"]
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok\u2028more\u2029lines").exit_code == 0
    for other in runs.values():
        assert invoke("verify", other).exit_code == 0
        assert invoke("status", other).exit_code == 0
    assert invoke("approve", run, "--reviewer", "carol", "--comment", "also ok").exit_code == 0
    before = ledger_for(run).path.read_bytes()
    result = invoke("approve", run, "--reviewer", "dave", "--comment", "next\x85line")
    assert result.exit_code == 2 and "U+0085" in result.output  # a C1 control: refused, nothing written
    assert ledger_for(run).path.read_bytes() == before


# 4. audit results forged through --resume -----------------------------------------------------

def _killed_run(tmp_path: Path, model_dir: Path, point: str) -> tuple[Path, Path]:
    """A toy run SIGKILLed at ``point`` (test_resume's harness): (suite, run directory)."""
    import signal

    from test_resume import CHILD

    from auditft.testing import toy_classification_data, write_suite

    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=model_dir)
    reports = tmp_path / "reports"
    child = subprocess.run([sys.executable, "-c", CHILD, point, str(suite), str(reports)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (run,) = [p for p in reports.iterdir() if p.is_dir()]
    return suite, run


def test_a_cached_audit_edited_before_resume_is_recomputed(tmp_path, tiny_model_dir):
    suite, run = _killed_run(tmp_path, tiny_model_dir, "after-audit")
    cached = run / "work" / "audits" / "accuracy.json"
    data = json.loads(cached.read_text())
    data["result"]["metrics"]["accuracy"]["value"] = 0.999  # the key is kept
    cached.write_text(json.dumps(data))
    assert invoke("run", suite, "--resume", run).exit_code in (0, 3)
    report = json.loads((run / "report.json").read_text())
    assert report["audits"]["accuracy"]["metrics"]["accuracy"]["value"] != 0.999
    assert report["recomputed_on_resume"] and "accuracy.json" in report["recomputed_on_resume"][0]
    assert [r["from_phase"] for r in report["resumed"]] == ["auditing"]
    assert "resumed" in (run / "report.html").read_text().lower()
    assert invoke("verify", run).exit_code == 0


# 5. the trust root inside the artefact -------------------------------------------------------

def test_a_reviewer_key_swapped_inside_the_run_does_not_verify(runs, tmp_path, monkeypatch):
    from auditft.manifest import sha256_file
    from auditft.signoff.signing import generate_keypair, sign

    run = runs["passed"]
    mallory, mallory_public = generate_keypair(tmp_path / "keys", "mallory")
    for name in ("report.json",):
        report = json.loads((run / name).read_text())
        report["release"]["reviewer_keys"]["signer"] = mallory_public
        (run / name).write_text(json.dumps(report))
    suite = yaml.safe_load((run / "suite.yaml").read_text())
    suite["release"]["reviewer_keys"]["signer"] = mallory_public
    (run / "suite.yaml").write_text(yaml.safe_dump(suite))
    events = ledger_for(run).events()
    for event in events:
        if event.get("type") == "gated" and event.get("run_id") == run.name:
            event["report_sha256"] = sha256_file(run / "report.json")
            event["artefacts"] = bound_artefacts(run)
            gated = event
    forged = {"type": "approved", "run_id": run.name, "actor": "signer", "comment": "forged", "at": gated["time"],
              "report_sha256": gated["report_sha256"], "artefacts": bound_artefacts(run),
              "time": gated["time"]}
    forged["signature"] = sign(forged, mallory)
    events = rechain(ledger_for(run).path, [*events, forged])
    _write_events(run / "events.jsonl", [e for e in events if e.get("run_id") == run.name])
    result = invoke("verify", run)
    assert result.exit_code == 6 and "lacks a valid signature by their trusted key" in result.output
    _clock(monkeypatch, datetime.now(timezone.utc) + timedelta(hours=1))
    assert invoke("release", run, "--to", tmp_path / "registry").exit_code == 6


def test_a_suite_may_list_only_keys_the_trust_store_holds(tmp_path, tiny_model_dir):
    from auditft.signoff.signing import generate_keypair
    from auditft.testing import toy_classification_data, write_suite

    toy_classification_data(tmp_path)
    _, public = generate_keypair(tmp_path / "keys", "bob")
    suite = write_suite(tmp_path / "s.yaml", model_dir=tiny_model_dir, release={"reviewer_keys": {"bob": public}})
    result = invoke("run", suite, "--out", tmp_path / "reports", "--author", "alice")
    assert result.exit_code == 2 and "not in the trust store" in result.output
    assert not [p for p in (tmp_path / "reports").glob("*") if p.is_dir()]
    assert invoke("trust", "add", "bob", public, "--reports", tmp_path / "reports", "--actor", "admin").exit_code == 0
    assert invoke("trust", "add", "bob", generate_keypair(tmp_path / "keys", "eve")[1],
                  "--reports", tmp_path / "reports", "--actor", "admin").exit_code == 2  # no silent swap
    assert invoke("run", suite, "--out", tmp_path / "reports", "--author", "alice").exit_code in (0, 3)
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    assert report["release"]["reviewer_key_fingerprints"]["bob"].startswith("SHA256:")


# 6. a keyed ledger with gaps -------------------------------------------------------------------

@pytest.fixture
def keyed_run(tmp_path, tiny_model_dir, monkeypatch):
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.testing import toy_classification_data, write_suite

    monkeypatch.setenv("AUDITFT_LEDGER_KEY", "s3cret")
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "k.yaml", model_dir=tiny_model_dir, name="keyed")
    pm = make_plugin_manager(entry_points=False, env={})
    run_id = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")["run_id"]
    run = tmp_path / "reports" / run_id
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    return run


def test_cutting_the_tail_of_a_keyed_ledger_and_the_run_copy_is_detected(keyed_run):
    path = ledger_for(keyed_run).path
    assert json.loads(_lines(path)[0])["type"] == "ledger"  # the first line says it is keyed
    lines = _lines(path)
    path.write_text("\n".join(lines[:-1]) + "\n")
    _write_events(keyed_run / "events.jsonl", run_events(keyed_run)[:-1])
    result = invoke("verify", keyed_run)
    assert result.exit_code == 6 and "head record" in result.output


def test_a_keyed_ledger_stripped_of_its_hmacs_does_not_verify_without_the_key(keyed_run, monkeypatch):
    path = ledger_for(keyed_run).path
    events = rechain(path, [{k: v for k, v in json.loads(line).items() if k != "hmac"} for line in _lines(path)])
    _write_events(keyed_run / "events.jsonl", [e for e in events if e.get("run_id") == keyed_run.name])
    monkeypatch.delenv("AUDITFT_LEDGER_KEY")
    result = invoke("verify", keyed_run)
    assert result.exit_code == 6 and "keyed" in result.output


def test_an_action_without_the_key_is_refused_before_anything_is_written(keyed_run, monkeypatch):
    path = ledger_for(keyed_run).path
    before, copy = path.read_bytes(), (keyed_run / "events.jsonl").read_bytes()
    monkeypatch.delenv("AUDITFT_LEDGER_KEY")
    result = invoke("approve", keyed_run, "--reviewer", "carol", "--comment", "no key")
    assert result.exit_code == 6 and "keyed" in result.output
    monkeypatch.setenv("AUDITFT_LEDGER_KEY", "another")
    assert invoke("approve", keyed_run, "--reviewer", "carol", "--comment", "wrong key").exit_code == 6
    assert path.read_bytes() == before and (keyed_run / "events.jsonl").read_bytes() == copy
    monkeypatch.setenv("AUDITFT_LEDGER_KEY", "s3cret")
    assert invoke("verify", keyed_run).exit_code == 0


# 7. a killed release that looks complete and is unrecorded ----------------------------------

KILL_AFTER_RENAME = r'''
import os, sys
from pathlib import Path
from auditft.signoff import release as R
original = R.record
def record(run_dir, event, **kw):
    if event["type"] == "released":
        os._exit(9)  # SIGKILL-like: no handler runs
    return original(run_dir, event, **kw)
R.record = record
R.release(Path(sys.argv[1]), Path(sys.argv[2]), actor="rel")
'''


def test_a_release_killed_after_the_rename_is_detected_and_reconciled(releasable, tmp_path):
    registry = tmp_path / "registry"
    child = subprocess.run([sys.executable, "-c", KILL_AFTER_RENAME, str(releasable), str(registry)],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, child.stderr[-2000:]
    shipped = registry / "blocked" / releasable.name
    assert (shipped / "signoff.jsonl").exists()  # complete-looking, but unrecorded
    result = invoke("verify", releasable)
    assert result.exit_code == 6 and "has no outcome" in result.output
    status = json.loads(invoke("status", releasable, "--format", "json").output)
    assert "interrupted release" in status["waiting_for"]
    # a second release elsewhere reconciles the first instead of shipping twice
    result = invoke("release", releasable, "--to", tmp_path / "second")
    assert result.exit_code == 0 and str(shipped) in result.output, result.output
    assert not (tmp_path / "second").exists()
    assert invoke("verify", releasable).exit_code == 0
    assert invoke("release", releasable, "--to", tmp_path / "third").exit_code == 4


# 8. the path names the release ---------------------------------------------------------------

def test_release_and_events_are_named_from_the_bound_identity(releasable, tmp_path):
    alias = tmp_path / "alias"
    alias.mkdir()
    (alias / "prod-approved-v2").symlink_to(releasable)
    result = invoke("release", alias / "prod-approved-v2", "--to", tmp_path / "registry")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "registry" / "blocked" / releasable.name).is_dir()
    assert not (tmp_path / "registry" / "blocked" / "prod-approved-v2").exists()
    released = [e for e in ledger_for(releasable).events() if e["type"] == "released"]
    assert [e["run_id"] for e in released] == [releasable.name]


def test_a_dotted_path_records_the_real_run_id(runs):
    run = runs["passed"]
    assert invoke("approve", run / "adapter" / "..", "--reviewer", "bob", "--comment", "ok").exit_code == 0
    approved = [e for e in ledger_for(run).events() if e["type"] == "approved"]
    assert [e["run_id"] for e in approved] == [run.name]


# 9. identity as raw strings ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Alice", "alice ", "ALICE", "al\u0456ce", "\uff41lice", "ali\u200bce", " a l i c e"])
def test_the_author_cannot_pass_four_eyes_under_another_spelling(runs, name):
    result = invoke("waive", runs["blocked"], "macro_f1", "--reviewer", name, "--reason", "mine")
    assert result.exit_code in (2, 4), result.output
    assert load_review(runs["blocked"]).waivers == {}


def test_one_reviewer_is_one_approval_however_spelled(runs):
    run = runs["passed"]
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    for spelling in ("bob ", "BOB", "\uff42ob"):
        result = invoke("approve", run, "--reviewer", spelling, "--comment", "again")
        assert result.exit_code == 4 and "already approved" in result.output


@pytest.mark.parametrize(("args", "what"), [
    (["--reviewer", "", "--comment", "x"], "--reviewer"),
    (["--reviewer", "bob", "--comment", "   "], "--comment"),
    (["--reviewer", "bob", "--comment", "x" * 1_000_000], "--comment"),
    (["--reviewer", "\x1b[31mred", "--comment", "x"], "--reviewer"),
    (["--reviewer", "[/]", "--comment", "x"], "--reviewer"),
])
def test_empty_huge_or_control_names_and_comments_are_refused(runs, args, what):
    before = ledger_for(runs["passed"]).path.read_bytes()
    result = invoke("approve", runs["passed"], *args)
    assert result.exit_code == 2 and what in result.output
    assert "\x1b" not in result.output  # never echoed raw to a terminal
    assert ledger_for(runs["passed"]).path.read_bytes() == before


def test_an_empty_waiver_reason_is_refused(runs):
    assert invoke("waive", runs["blocked"], "macro_f1", "--reviewer", "bob", "--reason", " ").exit_code == 2


# 10. time as the local clock's word -----------------------------------------------------------

def test_an_approval_from_a_clock_set_to_2099_is_refused(runs, monkeypatch):
    _clock(monkeypatch, datetime(2099, 1, 1, tzinfo=timezone.utc))
    result = invoke("approve", runs["passed"], "--reviewer", "bob", "--comment", "from the future")
    assert result.exit_code == 6 and "check the clock" in result.output


def test_a_release_from_a_clock_set_ahead_is_flagged(runs, tmp_path, monkeypatch):
    run = runs["passed"]  # review window 24h
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    with monkeypatch.context() as patch:
        _clock(patch, datetime.now(timezone.utc) + timedelta(days=2))
        assert invoke("release", run, "--to", tmp_path / "registry").exit_code == 0  # one clock cannot tell
    result = invoke("verify", run)  # any honest clock can
    assert result.exit_code == 6 and "in the future" in result.output
    assert invoke("reject", runs["blocked"], "--reviewer", "bob", "--comment", "x").exit_code == 6


def test_events_out_of_time_order_are_flagged(runs):
    run = runs["passed"]
    events = ledger_for(run).events()
    events[-1]["time"] = "2020-01-01T00:00:00.000000Z"
    rechain(ledger_for(run).path, events)
    assert "time went backwards" in invoke("verify", run).output


# 11. the smaller ones ---------------------------------------------------------------------------

def test_an_empty_folder_in_the_adapter_is_refused(releasable, tmp_path):
    (releasable / "adapter" / "empty").mkdir()
    assert "empty folder" in invoke("verify", releasable).output
    assert invoke("release", releasable, "--to", tmp_path / "registry").exit_code == 6


def test_a_fifo_in_the_adapter_is_refused_not_a_crash(releasable, tmp_path):
    os.mkfifo(releasable / "adapter" / "pipe")
    result = invoke("verify", releasable)
    assert result.exit_code == 6 and "not a regular file" in result.output
    assert invoke("release", releasable, "--to", tmp_path / "registry").exit_code == 6


def test_a_setuid_file_is_refused_and_no_mode_ships(releasable, tmp_path):
    weights = releasable / "adapter" / "adapter_model.safetensors"
    os.chmod(weights, 0o4755)
    assert "setuid" in invoke("verify", releasable).output
    os.chmod(weights, 0o755)  # an executable bit is not bound either: it is simply not shipped
    assert invoke("release", releasable, "--to", tmp_path / "registry").exit_code == 0
    shipped = next((tmp_path / "registry").rglob("adapter_model.safetensors"))
    assert shipped.stat().st_mode & 0o7777 == 0o644


@pytest.mark.parametrize("how", ["reorder", "duplicate"])
def test_reordered_or_duplicated_run_record_lines_are_flagged(runs, how):
    run = runs["passed"]
    events = run_events(run)
    events = events[::-1] if how == "reorder" else [*events, events[-1]]
    _write_events(run / "events.jsonl", events)
    result = invoke("verify", run)
    assert result.exit_code == 6 and "reordered or duplicated" in result.output


def test_markup_in_an_author_name_does_not_crash_status(runs):
    state_path = runs["passed"] / "state.json"
    state = json.loads(state_path.read_text())
    state["author"] = "[/]"
    state_path.write_text(json.dumps(state))
    result = invoke("status", "--reports", runs["passed"].parent)
    assert result.exit_code == 0 and "[/]" in result.output


def test_only_a_trusted_key_shows_as_signed(runs, tmp_path):
    from auditft.signoff.signing import generate_keypair

    eve, _ = generate_keypair(tmp_path / "keys", "eve")
    assert invoke("approve", runs["passed"], "--reviewer", "dave", "--comment", "ok", "--key", eve).exit_code == 0
    html = (runs["passed"] / "report.html").read_text()
    assert "signed with a trusted" not in html and "signature not from a trusted key" in html
    assert "approved for release" in html  # what the signature means, beside the name


def test_keygen_cannot_write_outside_its_folder(tmp_path):
    result = invoke("keygen", "../../x", "--dir", tmp_path / "keys")
    assert result.exit_code == 2
    assert not list(tmp_path.rglob("*.key"))


def test_release_into_the_run_itself_is_refused_and_leaves_nothing(releasable):
    before = sorted(p.relative_to(releasable) for p in releasable.rglob("*"))
    result = invoke("release", releasable, "--to", releasable / "adapter")
    assert result.exit_code == 2 and "inside the run directory" in result.output
    assert sorted(p.relative_to(releasable) for p in releasable.rglob("*") if p.name != ".lock") == [
        p for p in before if p.name != ".lock"]


def test_a_trust_store_edited_by_hand_does_not_verify(runs, tmp_path, signer_key):
    from auditft.signoff import trust
    from auditft.signoff.signing import generate_keypair

    run = runs["passed"]
    assert invoke("approve", run, "--reviewer", "signer", "--comment", "ok", "--key", signer_key).exit_code == 0
    _, mallory = generate_keypair(tmp_path / "keys", "mallory")
    store = trust.store_path(run.parent)
    data = json.loads(store.read_text())
    data["reviewers"]["signer"]["public_key"] = mallory  # swapped without `auditft trust add`
    store.write_text(json.dumps(data))
    result = invoke("verify", run)
    assert result.exit_code == 6 and "the store was edited" in result.output


def test_whole_script_look_alikes_and_accents_compare_as_one_person():
    from auditft.signoff import identity

    assert identity.same_person("асе", "ace")  # all Cyrillic: accepted as a name, the same as its twin
    assert identity.same_person("José", "jose") and identity.same_person("𝐚lice", "alice")
    with pytest.raises(identity.IdentityError):
        identity.person("bοb")  # Greek omicron among Latin letters


def test_a_resume_cannot_change_what_the_run_pre_registered(tmp_path, tiny_model_dir):
    suite, run = _killed_run(tmp_path, tiny_model_dir, "after-tuning")
    spec = yaml.safe_load(suite.read_text())
    spec["audits"][0]["gates"][0]["min"] = 0.01  # a threshold lowered between the kill and the resume
    suite.write_text(yaml.safe_dump(spec, sort_keys=False))
    inputs = run / "work" / "inputs.json"
    recorded = json.loads(inputs.read_text())
    recorded["suite"]["audits"][0]["gates"][0]["min"] = 0.01  # and the unsealed copy edited to match
    inputs.write_text(json.dumps(recorded))
    result = invoke("run", suite, "--resume", run)
    assert result.exit_code == 2 and "does not match its seal" in result.output


def test_gates_moved_between_runs_of_a_suite_are_flagged(tmp_path, tiny_model_dir):
    """Pre-registration: the created event holds the gates' hash before training; a later run
    of the same suite name with another threshold says so in its report (threshold shopping)."""
    from auditft.testing import toy_classification_data, write_suite

    toy_classification_data(tmp_path)
    reports = tmp_path / "reports"
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir)
    assert invoke("run", suite, "--out", reports, "--author", "alice").exit_code in (0, 3)
    first = json.loads(next(reports.glob("*/report.json")).read_text())
    assert first["preregistration"]["earlier_runs_that_differ"] == []
    created = next(e for e in ledger_for(reports / first["run_id"]).events(first["run_id"]) if e["type"] == "created")
    assert created["gates_sha256"] == first["preregistration"]["gates_sha256"]
    spec = yaml.safe_load(suite.read_text())
    spec["audits"][0]["gates"][0]["min"] = 0.3
    suite.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert invoke("run", suite, "--out", reports, "--author", "alice").exit_code in (0, 3)
    second = next(json.loads(p.read_text()) for p in reports.glob("*/report.json")
                  if json.loads(p.read_text())["run_id"] != first["run_id"])
    (earlier,) = second["preregistration"]["earlier_runs_that_differ"]
    assert earlier["run_id"] == first["run_id"] and earlier["changed"] == ["gates"]
    assert "changed between runs" in (reports / second["run_id"] / "report.html").read_text()
