"""Optional RFC 3161 timestamps, against a local time-stamping authority (tests/local_tsa.py):
decisive events get tokens, the review window is measured on the TSA's clock, a forged or
swapped token and a local clock that is off are caught, an unreachable TSA writes nothing."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from local_tsa import LocalTSA

from auditft.signoff import ledger as ledger_module
from auditft.signoff import release as release_module
from auditft.signoff import clock
from auditft.cli import cli
from auditft.signoff.layout import ledger_for


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _clock(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: when)  # the one clock sign-off reads


@pytest.fixture
def stamped(tmp_path, tiny_model_dir, monkeypatch):
    """A finished run (review window 24h) in a reports directory whose team has a TSA."""
    from auditft.testing import toy_classification_data, write_suite

    tsa = LocalTSA(tmp_path).__enter__()
    monkeypatch.setenv("AUDITFT_TSA_URL", tsa.url)
    monkeypatch.setenv("AUDITFT_TSA_ROOTS", str(tsa.root_pem))
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, release={"review_window": "24h"})
    result = invoke("run", suite, "--out", tmp_path / "reports", "--author", "alice")
    assert result.exit_code in (0, 3), result.output
    run = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir() and p.name.startswith("toy-"))
    yield tsa, run
    tsa.__exit__(None, None, None)


def test_decisive_events_are_timestamped_and_verify(stamped):
    tsa, run = stamped
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    events = ledger_for(run).events(run.name)
    tokens = sorted(p.name for p in (run.parent / "timestamps").iterdir())
    stamped_seqs = [e["seq"] for e in events if e["type"] in ("gated", "approved")]
    assert tokens == sorted(f"{seq}.tsr" for seq in stamped_seqs) and tsa.requests == len(stamped_seqs)
    assert invoke("verify", run).exit_code == 0


def test_a_clock_set_ahead_cannot_pass_the_review_window(stamped, monkeypatch, tmp_path):
    tsa, run = stamped
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    before = ledger_for(run).path.read_text()
    _clock(monkeypatch, datetime.now(timezone.utc) + timedelta(days=2))  # the releaser's clock only
    result = invoke("release", run, "--to", tmp_path / "registry")
    assert result.exit_code == 4 and "time-stamping authority's clock" in result.output
    assert not (tmp_path / "registry" / "toy" / run.name).exists()
    types = [e["type"] for e in ledger_for(run).events(run.name)][-2:]
    assert types == ["release_intent", "release_abandoned"] and ledger_for(run).path.read_text() != before


def test_the_window_passes_on_the_tsa_clock(stamped, monkeypatch, tmp_path):
    tsa, run = stamped
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    tsa.clock = lambda: later  # a day has really passed: both clocks agree
    _clock(monkeypatch, later)
    result = invoke("release", run, "--to", tmp_path / "registry")
    assert result.exit_code == 0, result.output


def test_a_swapped_or_forged_token_is_caught(stamped):
    tsa, run = stamped
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    folder = run.parent / "timestamps"
    first, second = sorted(folder.iterdir(), key=lambda p: int(p.stem))[:2]
    saved = first.read_bytes()
    shutil.copyfile(second, first)  # a real token, for another line
    result = invoke("verify", run)
    assert result.exit_code == 6 and "does not verify" in result.output
    first.write_bytes(saved[:-8] + b"\x00" * 8)
    assert invoke("verify", run).exit_code == 6
    first.unlink()
    result = invoke("verify", run)
    assert result.exit_code == 6 and "has no RFC 3161 timestamp" in result.output


def test_a_local_clock_that_is_off_shows_against_the_tsa(stamped, monkeypatch):
    tsa, run = stamped
    _clock(monkeypatch, datetime.now(timezone.utc) + timedelta(minutes=30))
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    monkeypatch.undo()
    monkeypatch.setenv("AUDITFT_TSA_URL", tsa.url)
    monkeypatch.setenv("AUDITFT_TSA_ROOTS", str(tsa.root_pem))
    result = invoke("verify", run)
    assert result.exit_code == 6 and "the local clock was off" in result.output


def test_an_unreachable_tsa_writes_nothing(stamped, monkeypatch):
    tsa, run = stamped
    before = ledger_for(run).path.read_bytes()
    monkeypatch.setenv("AUDITFT_TSA_URL", "http://127.0.0.1:9/")  # discard port: nothing listens
    result = invoke("approve", run, "--reviewer", "bob", "--comment", "ok")
    assert result.exit_code == 6 and "nothing was written" in result.output
    assert ledger_for(run).path.read_bytes() == before
