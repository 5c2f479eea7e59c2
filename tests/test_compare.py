"""``auditft compare``: per-row evidence in every run, paired bootstrap differences between
runs on the same test rows, refusal of runs on different rows, the comparison against the
signed-off run, and the workspace showing it."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.cli import cli
from auditft.compare.evidence import EVIDENCE_FILE, RESOURCES_FILE, read_test_rows
from auditft.fixtures import write_suite
from workspace_server import Server

FAIRNESS_AUDITS = [
    {"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.6, "rationale": "toy"}]},
    {"kind": "fairness", "options": {"min_group_size": 10, "n_boot": 100},
     "gates": [{"metric": "demographic_parity_difference", "max": 0.5, "rationale": "toy"},
               {"metric": "equalized_odds_difference", "max": 0.5, "rationale": "toy"}]},
]


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def fair_run(reports_template, tiny_model_dir, tmp_path_factory):
    """A run on the same toy rows as ``runs`` with the fairness audit too (other audits)."""
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare

    reports, _, _ = reports_template
    data = reports.parent
    directory = tmp_path_factory.mktemp("fair")
    suite = write_suite(directory / "fair.yaml", model_dir=tiny_model_dir, name="fair", audits=FAIRNESS_AUDITS,
                        data={"train": str(data / "train.jsonl"), "test": str(data / "test.jsonl"),
                              "labels": ["routine", "urgent"], "group_columns": ["sex", "band"],
                              "validation_fraction": 0.1, "seed": 7})
    pm = make_plugin_manager(entry_points=False, env={})
    run_id = execute(prepare(suite, pm), pm, reports=directory / "reports", author="alice")["run_id"]
    return directory / "reports" / run_id


def _checks(run: Path) -> dict[str, dict]:
    report = json.loads((run / "report.json").read_text())
    return {f"{c['audit']}:{c['metric']}": c for c in report["checks"]}


def _plant(run: Path, dest: Path, change) -> Path:
    """A copy of ``run`` whose stored rows ``change`` rewrote (the manifest updated to match)."""
    shutil.copytree(run, dest)
    rows = read_test_rows(dest)
    for row in rows:
        change(row)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    (dest / EVIDENCE_FILE).write_text(text)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["artefacts"][EVIDENCE_FILE] = hashlib.sha256(text.encode()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def _compare(out: Path, *runs: Path, extra: tuple = ()) -> dict:
    result = invoke("compare", *runs, "--out", out, "--n-boot", 500, *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "compare.json").read_text())


def test_every_run_stores_its_test_rows_bound_by_the_manifest(runs):
    run = runs["passed"]
    rows = read_test_rows(run)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["splits"]["test"] == len(rows) == 120
    assert {EVIDENCE_FILE, RESOURCES_FILE} <= set(manifest["artefacts"])
    assert [r["i"] for r in rows] == list(range(120)) and len({r["key"] for r in rows}) == 120
    assert all(r["base"] is not None and set(r["groups"]) == {"sex", "band"} for r in rows)
    # the stored predictions are the ones the report's figures came from
    accuracy = sum(r["adapter"] == r["truth"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(_checks(run)["accuracy:accuracy"]["value"])
    assert json.loads((run / RESOURCES_FILE).read_text())["peak_rss_bytes"] > 10 * 2**20
    assert invoke("verify", run).exit_code == 0  # the evidence is bound, not an unrecorded file


def test_a_run_compared_with_itself_differs_by_exactly_zero(runs, tmp_path):
    run = runs["passed"]
    result = _compare(tmp_path / "out", run, run)
    metrics = result["pairs"][0]["metrics"]
    for cid in ("accuracy:accuracy", "accuracy:macro_f1", "accuracy:accuracy_delta"):
        assert (metrics[cid]["difference"], metrics[cid]["ci_low"], metrics[cid]["ci_high"]) == (0.0, 0.0, 0.0)
        assert metrics[cid]["verdict"] == "no clear difference"
    html = (tmp_path / "out" / "compare.html").read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in html and "Paired differences" in html
    assert result["passing_every_gate"] and result["runs"][0]["cost"]["trainable_parameters"] > 0


def test_a_planted_better_run_shows_a_positive_paired_difference(runs, tmp_path):
    run = runs["passed"]
    rows = read_test_rows(run)
    wrong = sum(r["adapter"] != r["truth"] for r in rows)
    assert wrong > 5, "the toy model must make mistakes for this test to mean anything"
    fixed = iter(range(wrong))

    def fix_half(row: dict) -> None:  # half of the mistakes corrected
        if row["adapter"] != row["truth"] and next(fixed) % 2 == 0:
            row["adapter"] = row["truth"]

    better = _plant(run, tmp_path / "better", fix_half)
    result = _compare(tmp_path / "out", run, better)
    acc = result["pairs"][0]["metrics"]["accuracy:accuracy"]
    assert acc["difference"] == pytest.approx(((wrong + 1) // 2) / len(rows))
    assert 0 < acc["ci_low"] <= acc["difference"] <= acc["ci_high"] and acc["verdict"] == "b better"
    assert result["pairs"][0]["metrics"]["accuracy:macro_f1"]["difference"] > 0
    mcnemar = result["pairs"][0]["mcnemar"]
    assert (mcnemar["only_b_correct"], mcnemar["only_a_correct"]) == ((wrong + 1) // 2, 0)
    # the paired interval is narrower than the two runs' own intervals suggest
    own = _checks(run)["accuracy:accuracy"]
    assert acc["ci_high"] - acc["ci_low"] < own["ci_high"] - own["ci_low"]


def test_fairness_differences_are_paired_and_match_the_audit(runs, fair_run, tmp_path):
    flipped = _plant(fair_run, tmp_path / "flipped",
                     lambda r: r.update(adapter=1) if r["groups"]["sex"] == "female" else None)
    result = invoke("compare", fair_run, flipped, "--out", tmp_path / "out", "--n-boot", 300)
    assert result.exit_code == 0, result.output
    pair = json.loads((tmp_path / "out" / "compare.json").read_text())["pairs"][0]["metrics"]
    dp = pair["fairness:demographic_parity_difference"]
    # the recomputed figure of the real run is the audit's own
    assert dp["value_a"] == pytest.approx(_checks(fair_run)["fairness:demographic_parity_difference"]["value"])
    assert pair["fairness:equalized_odds_difference"]["value_a"] == pytest.approx(
        _checks(fair_run)["fairness:equalized_odds_difference"]["value"])
    # every female row predicted urgent: a large parity gap, with an interval above zero
    assert dp["difference"] > 0.2 and dp["ci_low"] > 0 and dp["verdict"] == "a better"
    # the audits differ from the toy run's: a one-line warning, and the checks only one ran unpaired
    result = invoke("compare", runs["passed"], fair_run, "--out", tmp_path / "mixed")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "different audits" in warning[0]
    mixed = json.loads((tmp_path / "mixed" / "compare.json").read_text())
    assert "fairness:demographic_parity_difference" not in mixed["pairs"][0]["metrics"]
    assert mixed["pairs"][0]["metrics"]["accuracy:accuracy"]["difference"] is not None


def test_runs_on_other_test_data_are_refused_naming_the_difference(runs, tmp_path):
    run = runs["passed"]
    other = tmp_path / "other"
    shutil.copytree(run, other)
    manifest = json.loads((other / "manifest.json").read_text())
    next(f for f in manifest["data"] if f["role"] == "test")["sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("compare", run, other, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "test file sha256 differs" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
    # same file hash but another row at position 3: refused too, naming the row
    shifted = _plant(run, tmp_path / "shifted", lambda r: r.update(key="f" * 64) if r["i"] == 3 else None)
    result = invoke("compare", run, shifted, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "test row 3" in result.output
    # a planted file the manifest does not vouch for is an integrity failure
    (shifted / EVIDENCE_FILE).write_text((run / EVIDENCE_FILE).read_text())
    assert invoke("compare", run, shifted).exit_code == 6
    assert invoke("compare", run).exit_code == 2  # one run and no --against-released
    generation = tmp_path / "generation"
    shutil.copytree(run, generation)
    report = json.loads((generation / "report.json").read_text())
    (generation / "report.json").write_text(json.dumps({**report, "task": "generation"}))
    result = invoke("compare", run, generation, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "the task differs" in result.output
    result = invoke("compare", run, tmp_path / "nowhere")
    assert result.exit_code == 2 and "not a finished run" in result.output


def test_old_runs_without_evidence_still_compare_values(runs, tmp_path):
    run = runs["passed"]
    old = tmp_path / "old"
    shutil.copytree(run, old)
    shutil.rmtree(old / "evidence")
    result = _compare(tmp_path / "out", run, old)
    acc = result["pairs"][0]["metrics"]["accuracy:accuracy"]
    assert acc["difference"] is None and "no evidence/test_rows.jsonl" in acc["reason"]
    row = next(c for c in result["checks"] if c["id"] == "accuracy:accuracy")
    assert all(v["value"] is not None and v["status"] for v in row["runs"].values())


def test_against_released_shows_what_changed_since_the_sign_off(runs, tmp_path, monkeypatch):
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.signoff import clock
    from auditft.signoff.review import load_review

    approved = runs["passed"]
    reports = approved.parent
    assert invoke("compare", approved, "--against-released").exit_code == 2  # nothing signed off yet
    assert invoke("approve", approved, "--reviewer", "bob", "--comment", "read it").exit_code == 0
    pm = make_plugin_manager(entry_points=False, env={})
    again = reports / execute(prepare(approved / "suite.yaml", pm), pm, reports=reports, author="alice")["run_id"]
    result = invoke("compare", again, "--against-released", "--n-boot", 300)
    assert result.exit_code == 0, result.output
    stored = reports / "compare" / again.name / "compare.json"
    found = json.loads(stored.read_text())
    assert found["against_released"]["released"] == approved.name
    assert [r["state"] for r in found["runs"]] == ["approved", "awaiting_review"]  # from the ledger, not the report
    changes = {c["id"]: c for c in found["against_released"]["changes"]}
    acc = changes["accuracy:accuracy"]
    assert acc["ci_low"] is not None and acc["ci_low"] <= acc["difference"] <= acc["ci_high"]
    # nothing was written into either run: both still verify
    assert invoke("verify", again).exit_code == 0 and invoke("verify", approved).exit_code == 0
    with Server(reports, "bob", pm=make_plugin_manager(entry_points=False, env={})) as server:
        page = server.get(f"/runs/{again.name}")
        assert "What changed since the last sign-off" in page and approved.name in page
        assert "accuracy:accuracy" in page.split('id="since-signoff"')[1]
        assert 'id="since-signoff"' not in server.get(f"/runs/{approved.name}")
    # released to a registry: the released folder (no evidence shipped) is paired through its run
    later = parse_gate(load_review(approved)) + timedelta(hours=25)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    registry = tmp_path / "registry"
    assert invoke("release", approved, "--to", registry).exit_code == 0
    out = tmp_path / "vs-registry"
    found = _compare(out, again, extra=("--against-released", registry))
    assert found["against_released"]["released"] == approved.name
    assert found["pairs"][0]["metrics"]["accuracy:accuracy"]["difference"] is not None
    assert found["runs"][0]["state"] == "released" and found["runs"][0]["path"].startswith(str(registry))


def parse_gate(review):
    from auditft.signoff.clock import parse_iso

    return parse_iso(review.gated["time"])


def test_generation_runs_store_per_row_scores_and_pair_them(tmp_path):
    from auditft.testing import tiny_causal_lm, toy_generation_data

    model = tiny_causal_lm(tmp_path / "model")
    toy_generation_data(tmp_path)
    suite = write_suite(tmp_path / "gen.yaml", model_dir=model, name="gen", task="generation",
                        data={"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7,
                              "group_columns": ["group"]},
                        tuner={"kind": "lora", "options": {"r": 8, "alpha": 16, "dropout": 0.0,
                                                           "target_modules": "all-linear"},
                               "training": {"epochs": 3, "learning_rate": 0.02, "batch_size": 8, "max_length": 32}},
                        audits=[{"kind": "accuracy", "gates": [{"metric": "exact_match", "min": 0.0, "rationale": "toy"}]}],
                        generation={"max_new_tokens": 4})
    result = invoke("run", suite, "--out", tmp_path / "reports", "--author", "a")
    assert result.exit_code in (0, 3), result.output
    run = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    rows = read_test_rows(run)
    em = json.loads((run / "report.json").read_text())["audits"]["accuracy"]["metrics"]["exact_match"]
    assert sum(r["adapter"]["exact_match"] for r in rows) / len(rows) == pytest.approx(em["value"])
    assert sum(r["base"]["exact_match"] for r in rows) / len(rows) == pytest.approx(em["base_value"])
    worse = _plant(run, tmp_path / "worse", lambda r: r["adapter"].update(exact_match=0.0, token_f1=0.0))
    found = _compare(tmp_path / "out", run, worse)
    metrics = found["pairs"][0]["metrics"]
    assert metrics["accuracy:exact_match"]["difference"] == pytest.approx(-em["value"])
    assert metrics["accuracy:token_f1"]["difference"] <= 0
    if em["value"] > 0.1:
        assert metrics["accuracy:exact_match"]["verdict"] == "a better"
