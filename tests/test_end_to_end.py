"""One real run on the tiny random model: tune with LoRA, audit, gate, report, quarantine."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.cli import cli
from auditft.testing import toy_classification_data, write_suite



def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_exit_code_and_summary(finished_run):
    result, run_dir = finished_run
    report = json.loads((run_dir / "report.json").read_text())
    assert result.exit_code == (0 if report["verdict"] == "passed" else 3), result.output
    assert report["run_id"] in result.output and "report.html" in result.output


def test_run_directory_holds_every_artefact(finished_run):
    _, run_dir = finished_run
    assert re.fullmatch(r"toy-\d{8}-\d{6}-[0-9a-f]{6}", run_dir.name)
    for name in ("suite.yaml", "manifest.json", "report.html", "report.json", "model_card.md", "state.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert not list(run_dir.rglob("*.bin")) and not (run_dir / "work").exists()  # no stray checkpoints
    assert json.loads((run_dir / "state.json").read_text())["phase"] == "complete"


def test_report_json_contract_keys_and_learning(finished_run):
    _, run_dir = finished_run
    report = json.loads((run_dir / "report.json").read_text())
    for key in ("run_id", "suite", "task", "state", "verdict", "checks", "audits", "tuner", "manifest"):
        assert key in report
    for check in report["checks"]:
        assert set(check) >= {"audit", "metric", "value", "ci_low", "ci_high", "op", "threshold", "status",
                              "base_value", "delta", "rationale"}
    tuner = report["tuner"]
    assert set(tuner) >= {"kind", "trainable_parameters", "total_parameters", "steps", "seconds"}
    assert 0 < tuner["trainable_parameters"] < tuner["total_parameters"]
    # the toy task is learnable: the adapter must beat chance clearly and the loss must fall
    accuracy = report["audits"]["accuracy"]["metrics"]["accuracy"]
    assert accuracy["value"] > 0.85, accuracy
    assert accuracy["base_value"] is not None and report["audits"]["accuracy"]["metrics"]["accuracy_delta"]
    curve = [loss for _, loss in tuner["loss_curve"]]
    assert curve[-1] < curve[0]
    assert report["state"] == ("awaiting_review" if report["verdict"] == "passed" else "blocked")


def test_manifest_hashes_match_the_bytes(finished_run):
    _, run_dir = finished_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for rel, digest in manifest["artefacts"].items():
        assert _sha(run_dir / rel) == digest, rel
    for rel, digest in manifest["adapter"].items():
        assert _sha(run_dir / "adapter" / rel) == digest
    assert {f["role"] for f in manifest["data"]} == {"train", "test"}
    assert manifest["libraries"]["torch"] and manifest["seeds"]["training"] == 7
    assert manifest["author"] == "alice"


def test_html_is_self_contained_and_escapes_data(finished_run):
    _, run_dir = finished_run
    html = (run_dir / "report.html").read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "onerror=alert" not in html.replace("&#34;", '"').split("&lt;img")[0] or "&lt;img" in html
    assert "&lt;script&gt;" in html  # the payload is shown as text
    for needle in ("Gate", "Accuracy", "Confusion matrix", "Run manifest", "Sign-off", "<svg"):
        assert needle in html


def test_ledger_records_created_and_gated(finished_run):
    _, run_dir = finished_run
    from auditft.signoff.layout import ledger_for

    ledger = ledger_for(run_dir)
    assert ledger.verify() == []
    types = [e["type"] for e in ledger.events(run_dir.name)]
    # created (with the pre-registered hashes), a seal per cache file the run could resume from, gated
    assert types[0] == "created" and types[-1] == "gated" and set(types[1:-1]) == {"sealed"}
    sealed = {e["file"] for e in ledger.events(run_dir.name) if e["type"] == "sealed"}
    assert {"work/inputs.json", "work/tuning.json", "work/audits/accuracy.json"} <= sealed
    assert len(ledger.events(run_dir.name)[0]["gates_sha256"]) == 64
    gated = ledger.events(run_dir.name)[-1]
    assert gated["report_sha256"] == _sha(run_dir / "report.json")


def test_status_shows_the_run(finished_run):
    _, run_dir = finished_run
    result = CliRunner().invoke(cli, ["status", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    report = json.loads((run_dir / "report.json").read_text())
    assert info["state"] == report["state"] and info["phase"] == "complete"


def test_model_card_front_matter(finished_run):
    _, run_dir = finished_run
    import yaml

    card = (run_dir / "model_card.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["model-index"][0]["results"][0]["metrics"]
    assert "Gate verdict" in card


def test_status_of_a_directory_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "not an auditft run directory" in result.output


def test_report_json_validates_against_the_shipped_schema(finished_run):
    import importlib.resources

    import jsonschema

    _, run_dir = finished_run
    schema = json.loads(importlib.resources.files("auditft.report").joinpath("report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    report = json.loads((run_dir / "report.json").read_text())
    jsonschema.validate(report, schema)
    broken = {**report, "verdict": "maybe"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_same_seed_gives_identical_adapter_and_metrics(tmp_path, tiny_model_dir):
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare

    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir)
    pm = make_plugin_manager(entry_points=False, env={})
    reports = [execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="a") for _ in range(2)]
    first, second = (tmp_path / "reports" / r["run_id"] for r in reports)
    assert reports[0]["run_id"] != reports[1]["run_id"]
    assert (first / "adapter" / "adapter_model.safetensors").read_bytes() == (
        second / "adapter" / "adapter_model.safetensors").read_bytes()
    assert reports[0]["audits"]["accuracy"]["metrics"] == reports[1]["audits"]["accuracy"]["metrics"]
    assert reports[0]["tuner"]["loss_curve"] == reports[1]["tuner"]["loss_curve"]


def test_a_report_written_before_the_new_keys_still_renders_every_section(finished_run):
    """Re-rendering (auditft report, the workspace) meets report.json files written by earlier
    versions: sections must not fail on keys added since (metric details, validity, ...)."""
    from auditft.plugins import make_plugin_manager
    from auditft.report.html import render_html

    _, run_dir = finished_run
    report = json.loads((run_dir / "report.json").read_text())

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k not in ("details", "validity", "preregistration", "gate_statistics", "resumed",
                                 "recomputed_on_resume", "scored_models", "baselines")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    html = render_html(strip(report), make_plugin_manager(entry_points=False, env={}))
    assert "Section from" not in html, html[html.find("Section from") - 200:html.find("Section from") + 300]
