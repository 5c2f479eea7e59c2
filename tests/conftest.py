"""Shared fixtures: a tiny random model built once per session, toy data, isolated plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("AUDITFT_PROGRESS", "0")
# tiny models gain nothing from a second thread, and several test processes may share 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# tests swap plugin sets in-process; the cached plugin table is tested on its own
# (tests/test_plugin_table.py) and would otherwise carry one test's plugins into the next
os.environ.setdefault("AUDITFT_NO_PLUGIN_CACHE", "1")

from auditft.testing import isolated_plugin_manager, tiny_classifier, toy_classification_data, write_suite  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_classifier(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def pm():
    return isolated_plugin_manager()


@pytest.fixture
def toy(tmp_path: Path, tiny_model_dir: Path):
    """A directory with toy data and a valid suite pointing at the tiny model."""
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir)
    return tmp_path, suite


@pytest.fixture(scope="session")
def reports_template(tmp_path_factory, tiny_model_dir):
    """One reports directory with two finished runs on the tiny model: one whose gate
    passed (``passed``) and one blocked by an impossible threshold (``blocked``)."""
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare

    directory = tmp_path_factory.mktemp("runs")
    toy_classification_data(directory)
    reports = directory / "reports"
    pm = make_plugin_manager(entry_points=False, env={})
    runs = {}
    from auditft.signoff.signing import generate_keypair

    key, public = generate_keypair(directory / "keys", "signer")
    from auditft.signoff import trust

    trust.add(reports, "signer", public, actor="admin")  # a suite may list only trusted keys
    passed = write_suite(directory / "passed.yaml", model_dir=tiny_model_dir, name="passed",
                         release={"review_window": "24h", "reviewer_keys": {"signer": public}})
    runs["passed"] = execute(prepare(passed, pm), pm, reports=reports, author="alice")["run_id"]
    blocked = write_suite(directory / "blocked.yaml", model_dir=tiny_model_dir, name="blocked", audits=[
        {"kind": "accuracy", "gates": [
            {"metric": "accuracy", "min": 0.6, "rationale": "toy"},
            {"metric": "macro_f1", "min": 0.9999, "rationale": "impossible on purpose"}]}])
    runs["blocked"] = execute(prepare(blocked, pm), pm, reports=reports, author="alice")["run_id"]
    return reports, runs, key


@pytest.fixture
def runs(tmp_path, reports_template):
    """A private copy of the template reports directory: tests may approve, tamper, release."""
    import shutil

    source, ids, _ = reports_template
    reports = tmp_path / "reports"
    shutil.copytree(source, reports)
    return {name: reports / run_id for name, run_id in ids.items()}


@pytest.fixture
def signer_key(reports_template):
    """The private key of reviewer ``signer``, listed in the ``passed`` run's release policy."""
    return reports_template[2]


PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)> severe crushing'


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_model_dir):
    """One complete run of the toy suite via the CLI (hostile text in the test set)."""
    from click.testing import CliRunner

    from auditft.cli import cli

    directory = tmp_path_factory.mktemp("e2e")
    # a hostile text in the test set: it must come out escaped in the report
    toy_classification_data(directory, text_override={0: PAYLOAD, 1: PAYLOAD})
    suite = write_suite(directory / "suite.yaml", model_dir=tiny_model_dir)
    out = directory / "reports"
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(out), "--author", "alice"])
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, result.output
    return result, runs[0]


