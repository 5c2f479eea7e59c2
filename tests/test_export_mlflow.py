"""The MLflow export (issue 21), on real MLflow with SQLite stores, read back through a fresh
``MlflowClient``: what a registry user sees must be what the ledger says."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import mlflow
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from auditft.cli import cli
from auditft.signoff import clock
from auditft.signoff.clock import parse_iso
from auditft.signoff.review import load_review


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    """MLflow's default roots follow the working directory: run where a stray one shows."""
    monkeypatch.chdir(tmp_path)


def invoke(*args: Any):
    return CliRunner().invoke(cli, [str(a) for a in args])


def export(run: Path, *extra: Any) -> list[str]:
    result = invoke("export", run, "--mlflow", *extra)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def store(reports: Path) -> tuple[MlflowClient, str]:
    uri = f"sqlite:///{reports / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def mlflow_runs(client: MlflowClient, run_id: str) -> list[Any]:
    experiment = client.get_experiment_by_name("auditft")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`auditft.run_id` = '{run_id}'")


def last_ledger_hash(run: Path) -> str:
    events = [json.loads(line) for line in (run.parent / "ledger.jsonl").read_text().splitlines()]
    return [e for e in events if e.get("run_id") == run.name][-1]["hash"]


def test_a_released_run_is_registered_once_with_its_sign_off(runs, signer_key, tmp_path, monkeypatch):
    run = runs["passed"]
    tracking_before = mlflow.get_tracking_uri()
    assert invoke("approve", run, "--reviewer", "signer", "--comment", "read it", "--key", signer_key).exit_code == 0
    lines = export(run)
    client, uri = store(run.parent)
    assert lines == [lines[0], "registered model passed version 1 (aliases: approved)", "created"]
    assert lines[0].startswith("mlflow: run ") and lines[0].endswith(f" in {uri}")  # no MLflow INFO lines
    assert client.get_registered_model("passed").aliases == {"approved": 1}
    # the review window passes; released: the alias follows the ledger, nothing is logged twice
    later = parse_iso(load_review(run).gated["time"]) + timedelta(hours=25)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert invoke("release", run, "--to", tmp_path / "registry").exit_code == 0
    assert export(run)[1:] == ["registered model passed version 1 (aliases: released)", "updated"]
    assert export(run)[1:] == ["registered model passed version 1 (aliases: released)", "updated"]

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # a fresh client reads it all back
    found = mlflow_runs(client, run.name)
    assert len(found) == 1 and found[0].info.run_name == run.name and found[0].info.status == "FINISHED"
    versions = client.search_model_versions("name='passed'")
    assert len(versions) == 1
    version = versions[0]
    assert client.get_registered_model("passed").aliases == {"released": 1}
    assert version.source == f"runs:/{found[0].info.run_id}/adapter" and version.run_id == found[0].info.run_id
    report = json.loads((run / "report.json").read_text())
    expected = {"auditft.state": "released", "auditft.verdict": "passed", "auditft.approvers": "signer",
                "auditft.ledger_hash": last_ledger_hash(run), "auditft.run_id": run.name,
                "auditft.report_sha256": hashlib.sha256((run / "report.json").read_bytes()).hexdigest()}
    assert {k: version.tags.get(k) for k in expected} == expected and "auditft.rejected" not in version.tags
    data = found[0].data
    assert {k: data.tags.get(k) for k in expected} == expected
    assert data.tags["auditft.check.accuracy.accuracy"] == "pass"
    check = next(c for c in report["checks"] if (c["audit"], c["metric"]) == ("accuracy", "accuracy"))
    assert data.metrics["accuracy.accuracy"] == check["value"]
    assert (data.metrics["accuracy.accuracy.ci_low"], data.metrics["accuracy.accuracy.ci_high"]) == (
        check["ci_low"], check["ci_high"])
    assert data.metrics["accuracy.accuracy.base"] == check["base_value"]
    assert "core.model_not_degenerate.ci_low" not in data.metrics  # None is not a metric
    assert client.get_metric_history(found[0].info.run_id, "accuracy.accuracy")[0].value == check["value"]
    assert len(client.get_metric_history(found[0].info.run_id, "accuracy.accuracy")) == 1
    seeds = json.loads((run / "manifest.json").read_text())["seeds"]
    assert data.params["seed.data"] == str(seeds["data"]) and data.params["tuner.kind"] == report["tuner"]["kind"]
    assert data.params["tuner.options.r"] == str(report["tuner"]["options"]["r"])
    assert data.params["training.learning_rate"] == str(report["tuner"]["training"]["learning_rate"])
    shipped = Path(client.download_artifacts(found[0].info.run_id, "", str(tmp_path / "down")))
    assert {p.name for p in shipped.iterdir()} >= {"report.json", "report.html", "model_card.md", "manifest.json",
                                                   "suite.yaml", "adapter"}
    assert (shipped / "adapter" / "adapter_model.safetensors").read_bytes() == (
        run / "adapter" / "adapter_model.safetensors").read_bytes()
    assert (run.parent / "mlflow" / "artifacts").is_dir() and not (tmp_path / "mlruns").exists()
    assert mlflow.get_tracking_uri() == tracking_before  # the process's tracking URI was left alone
    # a newer release holds the alias: exporting this older one again does not take it back
    newer = client.create_model_version("passed", version.source, run_id=version.run_id).version
    client.set_registered_model_alias("passed", "released", newer)
    assert export(run)[1:] == ["registered model passed version 1 (aliases: none)", "updated"]
    assert client.get_registered_model("passed").aliases == {"released": int(newer)}


def test_a_rejection_takes_the_alias_away_and_a_blocked_run_gets_none(runs):
    run, blocked = runs["passed"], runs["blocked"]
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "looks fine").exit_code == 0
    assert export(run)[1] == "registered model passed version 1 (aliases: approved)"
    result = invoke("reject", run, "--reviewer", "dave", "--comment", "not convinced")
    assert result.exit_code == 0, result.output
    assert export(run)[1:] == ["registered model passed version 1 (aliases: none)", "updated"]
    assert export(blocked)[1:] == ["registered model blocked version 1 (aliases: none)", "created"]
    client, _ = store(run.parent)
    assert client.get_registered_model("passed").aliases == {}
    (version,) = client.search_model_versions("name='passed'")
    assert (version.tags["auditft.state"], version.tags["auditft.rejected"], version.tags["auditft.rejected_by"]) == (
        "rejected", "true", "dave")
    assert version.tags["auditft.ledger_hash"] == last_ledger_hash(run)
    assert client.get_registered_model("blocked").aliases == {}
    (version,) = client.search_model_versions("name='blocked'")
    assert (version.tags["auditft.state"], version.tags["auditft.verdict"], version.tags["auditft.approvers"]) == (
        "blocked", "blocked", "")
    assert "auditft.rejected" not in version.tags and not version.tags.get("auditft.waived")
    (found,) = mlflow_runs(client, blocked.name)
    assert found.data.tags["auditft.check.accuracy.macro_f1"] == "fail"
    assert found.data.tags["auditft.state"] == "blocked"
    # a waiver travels: what a blocked verdict would be approved over, and who accepted it
    result = invoke("waive", blocked, "accuracy:macro_f1", "--reviewer", "erin", "--reason", "known gap")
    assert result.exit_code == 0, result.output
    assert export(blocked)[1:] == ["registered model blocked version 1 (aliases: none)", "updated"]
    (version,) = client.search_model_versions("name='blocked'")
    assert version.tags["auditft.waived"] == "accuracy:macro_f1 by erin"
    assert mlflow_runs(client, blocked.name)[0].data.tags["auditft.waived"] == "accuracy:macro_f1 by erin"


def test_changed_bytes_or_no_run_export_nothing(runs, tmp_path, monkeypatch):
    run, blocked = runs["passed"], runs["blocked"]
    report = run / "report.json"
    data = bytearray(report.read_bytes())
    data[data.index(b'"verdict"') + 12] ^= 0x01  # one byte of the verdict
    report.write_bytes(bytes(data))
    result = invoke("export", run, "--mlflow")
    assert result.exit_code == 6, result.output
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    result = invoke("export", empty, "--mlflow")
    assert result.exit_code == 2 and "not a finished run" in result.output
    result = invoke("export", blocked)
    assert result.exit_code == 2 and "choose a destination: --mlflow" in result.output
    monkeypatch.setitem(sys.modules, "mlflow", None)  # MLflow not installed
    result = invoke("export", blocked, "--mlflow")
    assert result.exit_code == 2 and "pip install 'auditft[export]'" in result.output
    assert not (run.parent / "mlflow").exists()  # nothing was logged anywhere


def test_another_tracking_uri_and_an_interrupted_export(runs, tmp_path):
    run, blocked = runs["passed"], runs["blocked"]
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'other.db'}"
    assert export(blocked, "--tracking-uri", uri)[0].endswith(f" in {uri}")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert len(mlflow_runs(client, blocked.name)) == 1 and len(client.search_model_versions("name='blocked'")) == 1
    assert (tmp_path / "elsewhere" / "artifacts").is_dir() and not (run.parent / "mlflow").exists()
    assert not (tmp_path / "mlruns").exists()
    # an export cut off after creating its MLflow run left it unfinished: it is replaced, not reused
    experiment = client.get_experiment_by_name("auditft")
    assert experiment is not None
    stale = client.create_run(experiment.experiment_id, tags={"auditft.run_id": run.name}).info.run_id
    assert export(run, "--tracking-uri", uri)[2] == "created"
    (found,) = mlflow_runs(client, run.name)
    assert found.info.run_id != stale and client.get_run(stale).info.lifecycle_stage == "deleted"
    assert "accuracy.accuracy" in found.data.metrics
    assert export(run, "--tracking-uri", uri)[2] == "updated"
    assert len(mlflow_runs(client, run.name)) == 1 and len(client.search_model_versions("name='passed'")) == 1


def test_the_command_line_does_not_import_mlflow_until_it_exports():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom auditft.cli import cli\n"
            "out = CliRunner().invoke(cli, ['export', '--help']).output\n"
            "assert '--tracking-uri' in out, out\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
