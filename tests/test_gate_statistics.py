"""Statistics the gate leans on (issue 15): clustered intervals in the accuracy audit, the
cluster column in the data, McNemar beside paired deltas in the report, the power plan."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from auditft.data import Example
from auditft.default_plugins.audits.accuracy import AccuracyAudit, AccuracyOptions, auditft_report_sections


def _job(cluster_column: str | None, *, clusters: int = 12, per: int = 10, seed: int = 0):
    """A classification job whose test rows come in clusters that are right or wrong together."""
    rng = np.random.default_rng(seed)
    right = np.repeat(rng.random(clusters) < 0.75, per)
    n = clusters * per
    y = np.tile([0, 1], n // 2)
    pred = np.where(right, y, 1 - y)
    test = [Example(f"text {i} {'alarm' if y[i] else 'calm'}", int(y[i]), {}, "test.jsonl", i,
                    cluster=f"patient-{i // per}") for i in range(n)]
    train = [Example(f"t {i} {'alarm' if i % 2 else 'calm'}", i % 2, {}, "train.jsonl", i) for i in range(40)]
    proba = np.eye(2)[pred]
    models = SimpleNamespace(adapter_proba=lambda split: proba, base_probe_proba=lambda split: np.eye(2)[y * 0])
    suite = SimpleNamespace(data=SimpleNamespace(cluster_column=cluster_column))
    data = SimpleNamespace(test=test, train=train, labels=["calm", "alarm"])
    return SimpleNamespace(suite=suite, data=data, models=models, seed=seed, task="classification")


def test_accuracy_audit_resamples_clusters_when_the_suite_names_a_cluster_column():
    audit = AccuracyAudit(AccuracyOptions(n_boot=500))
    rows = audit.run(_job(None)).metrics["accuracy"]
    clustered_result = audit.run(_job("patient"))
    clustered = clustered_result.metrics["accuracy"]
    assert clustered.value == rows.value
    assert rows.details["interval"] == "clopper-pearson"
    assert clustered.details["interval"] == "cluster bootstrap"
    # 12 independent clusters, not 120 independent rows: a much wider interval
    assert clustered.ci_high - clustered.ci_low > 1.8 * (rows.ci_high - rows.ci_low)
    assert clustered_result.evidence["clusters"] == 12
    assert any("cluster bootstrap over 12 clusters" in note for note in clustered_result.notes)
    assert "mcnemar" not in (clustered_result.metrics["accuracy_delta"].details or {})


def test_report_shows_the_mcnemar_p_value_beside_the_delta():
    result = AccuracyAudit(AccuracyOptions(n_boot=200)).run(_job(None))
    mc = result.metrics["accuracy_delta"].details["mcnemar"]
    assert 0 <= mc["p_value"] <= 1 and mc["only_this_correct"] + mc["only_other_correct"] > 0
    data = json.loads(json.dumps(result.to_dict()))  # report.json round trip keeps the details
    html = auditft_report_sections({"task": "classification", "audits": {"accuracy": data}})[0].html
    assert "McNemar exact p = " in html
    assert any("exact McNemar" in note for note in result.notes)


def test_data_rows_carry_their_cluster(tmp_path):
    from auditft.data import load_data
    from auditft.errors import DataError
    from auditft.suite import load_suite
    from auditft.testing import toy_classification_data, write_suite

    toy_classification_data(tmp_path, n_train=40, n_test=20)
    data = {"train": "train.jsonl", "test": "test.jsonl", "labels": ["routine", "urgent"],
            "group_columns": ["sex"], "cluster_column": "band"}
    suite = load_suite(write_suite(tmp_path / "suite.yaml", model_dir=tmp_path, data=data))
    loaded = load_data(suite)
    assert {ex.cluster for ex in loaded.test} == {"young", "old"}
    lines = (tmp_path / "test.jsonl").read_text().splitlines()
    row = json.loads(lines[4])
    del row["band"]
    lines[4] = json.dumps(row)
    (tmp_path / "test.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"test.jsonl: row 5: missing cluster column 'band' \(data.cluster_column\)"):
        load_data(suite)


def test_power_plan_before_training_compares_with_the_test_split(pm, tmp_path):
    from auditft import power
    from auditft.suite import parse_suite

    raw = {"name": "p", "task": "classification", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": [{"kind": "accuracy", "gates": [
               {"metric": "accuracy", "min": 0.8, "rationale": "r"},
               {"metric": "accuracy_delta", "min": 0.0, "rationale": "r"}]}]}
    suite = parse_suite(raw, tmp_path / "s.yaml")
    (row,) = power.plan(suite.audits, pm.audits, test_rows=50)  # deltas are not shares: no row
    assert row == {"audit": "accuracy", "metric": "accuracy", "op": "min", "threshold": 0.8, "margin": 0.1,
                   "needed": 65, "available": 50, "powered": False}
    assert power.plan(suite.audits, pm.audits, test_rows=65)[0]["powered"] is True


def test_report_gate_statistics_section_renders_the_power_plan():
    from auditft.report.validity import validity_section

    report = {"validity": {"rules": "r", "subject": None},
              "gate_statistics": {"correction": "holm", "power_formula": "needed = ...", "power": [
                  {"audit": "accuracy", "metric": "accuracy", "op": "min", "threshold": 0.8, "margin": 0.1,
                   "needed": 65, "available": 50, "powered": False}]}}
    html = validity_section(report).html
    assert "insufficient by design" in html and "Holm" in html and "Clopper-Pearson" in html
