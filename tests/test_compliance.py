"""The regulator's map: every run writes compliance.md (hashed like the report), each
obligation points at the artefact and check that answers it, a missing audit is a gap and
never met, sign-off lines wait for people, and the mapping is an editable data file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.cli import cli
from auditft.report.compliance import MAP_ENV, assess, load_map, render_markdown


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def statuses(assessment: dict) -> dict[str, str]:
    return {o["id"]: o["status"] for o in assessment["obligations"]}


def test_every_run_writes_compliance_md_bound_like_the_report(runs):
    run = runs["passed"]
    text = (run / "compliance.md").read_text()
    manifest = json.loads((run / "manifest.json").read_text())
    assert "compliance.md" in manifest["artefacts"]  # approved with the report, checked by verify
    assert invoke("verify", run).exit_code == 0
    assert text.startswith(f"# Regulatory map: {run.name}")
    assert "## EU AI Act" in text and "## NIST AI RMF" in text
    # each line names the artefact and the check it points to
    assert "`report.json → audits.accuracy`; checks `accuracy:accuracy` pass" in text


def test_a_run_without_fairness_shows_per_group_performance_missing(runs):
    report = json.loads((runs["passed"] / "report.json").read_text())
    assert "fairness" not in report["audits"]
    found = statuses(assess(report))
    assert found["eu-art13-3b-v"] == "missing" and found["nist-measure-2-11"] == "missing"
    assert found["eu-art10"] == "partial"  # data hashes recorded, but no data audit ran
    md = (runs["passed"] / "compliance.md").read_text()
    row = next(line for line in md.splitlines() if "Art. 13(3)(b)(v)" in line)
    assert "| missing |" in row and "the audit did not run" in row


def test_a_run_with_fairness_answers_it_and_an_errored_audit_is_a_gap(runs):
    report = json.loads((runs["passed"] / "report.json").read_text())
    report["audits"]["fairness"] = {"error": None, "evidence": {"views": [{"name": "sex", "gated": True}]}}
    assert statuses(assess(report))["eu-art13-3b-v"] == "answered"
    report["audits"]["fairness"] = {"error": "RuntimeError: boom", "evidence": {"views": [{"name": "sex"}]}}
    item = next(o for o in assess(report)["obligations"] if o["id"] == "eu-art13-3b-v")
    assert item["status"] == "missing" and "errored" in item["evidence"][0]["detail"]
    report["audits"]["fairness"] = {"error": None, "evidence": {}}  # ran, but no per-group tables
    assert statuses(assess(report))["eu-art13-3b-v"] == "missing"


def test_sign_off_lines_wait_for_people_then_follow_the_ledger(runs, signer_key):
    run = runs["passed"]
    report = json.loads((run / "report.json").read_text())
    before = statuses(assess(report))
    assert before["eu-art14"] == "pending" and before["eu-annex4-2g"] == "pending"
    assert "Art. 14" in (run / "report.html").read_text()
    assert invoke("approve", run, "--reviewer", "signer", "--comment", "read it", "--key", signer_key).exit_code == 0
    html = (run / "report.html").read_text()  # re-rendered with the sign-off record
    section = html.split('id="regulatory-map"')[1]
    art14 = section.split("Art. 14</strong>")[1].split("</tr>")[0]
    assert 'class="status pass">answered' in art14 and "signer at" in art14
    # compliance.md is the map at the gate: approving changed no approved byte
    assert "pending" in (run / "compliance.md").read_text()
    assert invoke("verify", run).exit_code == 0


def test_an_unsigned_approval_does_not_answer_signed_test_reports(runs):
    from auditft.signoff.rendering import review_info
    from auditft.signoff.review import load_review
    from auditft.signoff import clock

    run = runs["blocked"]
    assert invoke("waive", run, "accuracy:macro_f1", "--reviewer", "bob", "--reason", "toy").exit_code == 0
    assert invoke("approve", run, "--reviewer", "bob", "--comment", "ok").exit_code == 0
    review = load_review(run)
    found = assess(review.report, review_info(review, clock.utcnow()))
    annex = next(o for o in found["obligations"] if o["id"] == "eu-annex4-2g")
    assert annex["status"] == "partial" and "without a signature" in annex["evidence"][1]["detail"]
    art14 = {e["name"]: e for e in next(o for o in found["obligations"] if o["id"] == "eu-art14")["evidence"]}
    assert art14["approved"]["found"] is True and "bob at" in art14["approved"]["detail"]
    # this suite's review window is 0s: human oversight is only partly in place, and says so
    assert art14["review_window_seconds"]["found"] is False and statuses(found)["eu-art14"] == "partial"


def test_every_report_and_manifest_key_the_map_names_exists_in_a_real_run(runs):
    """A misspelt key would show as missing for ever; an audit kind the map names must exist."""
    from auditft.plugins import default_plugins

    report = json.loads((runs["passed"] / "report.json").read_text())
    kinds = {e.kind for e in default_plugins().audits}
    for o in load_map()["obligations"]:
        for ev in o["evidence"]:
            if "report" in ev:
                assert ev["report"] in report, (o["id"], ev)
            if "manifest" in ev:
                assert report["manifest"].get(ev["manifest"]), (o["id"], ev)
            if "audit" in ev:
                assert ev["audit"] in kinds, (o["id"], ev)


def test_a_team_edits_the_map_and_a_broken_map_stops_before_anything_runs(runs, tmp_path, monkeypatch, toy):
    from importlib import resources

    shipped = (resources.files("auditft") / "resources" / "compliance" / "obligations.yaml").read_text()
    mapping = yaml.safe_load(shipped)
    mapping["obligations"] = [{"id": "team-1", "framework": "eu-ai-act", "ref": "Internal 7", "title": "Calibrated",
                               "evidence": [{"audit": "calibration", "what": "ECE gated"}]}]
    edited = tmp_path / "ours.yaml"
    edited.write_text(yaml.safe_dump(mapping))
    monkeypatch.setenv(MAP_ENV, str(edited))
    report = json.loads((runs["passed"] / "report.json").read_text())
    found = assess(report)
    assert statuses(found) == {"team-1": "missing"} and found["map"]["path"] == str(edited)
    assert re.search(r"sha256 `[0-9a-f]{16}…`", render_markdown(found))
    edited.write_text("obligations:\n  - {id: x, framework: nope, ref: r, title: t, evidence: [{audit: data}]}\n")
    directory, suite = toy
    for command in (("validate", suite), ("run", suite, "--out", directory / "out")):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert "obligations[0].framework: 'nope' is not under `frameworks`" in result.output
    assert not (directory / "out").exists()
