"""Gate logic: conservative CI bound, insufficient evidence, errors, missing audits."""

from __future__ import annotations

import math

import pytest

from auditft import gate
from auditft.records import AuditResult, Metric
from auditft.suite import parse_suite


def _suite(tmp_path, gates, *, required=True, extra_audit=False):
    audits = [{"kind": "accuracy", "gates": gates, "required": required}]
    if extra_audit:
        audits.append({"kind": "accuracy2", "gates": []})
    raw = {"name": "g", "task": "classification", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": audits}
    return parse_suite(raw, tmp_path / "s.yaml")


def _gate(metric="accuracy", **bound):
    return {"metric": metric, "rationale": "why", **bound}


def _result(**metrics):
    return {"accuracy": AuditResult(kind="accuracy", metrics=metrics)}


@pytest.mark.parametrize(
    ("metric", "bound", "status"),
    [
        (Metric(0.90, 0.86, 0.94, n=500), {"min": 0.85}, "pass"),
        (Metric(0.90, 0.84, 0.94, n=500), {"min": 0.85}, "insufficient"),  # CI crosses
        (Metric(0.80, 0.76, 0.84, n=500), {"min": 0.85}, "fail"),
        (Metric(0.85, 0.80, 0.90, n=500), {"min": 0.85}, "insufficient"),  # exactly at threshold, CI below
        (Metric(0.05, 0.02, 0.08, n=500), {"max": 0.10}, "pass"),
        (Metric(0.05, 0.02, 0.12, n=500), {"max": 0.10}, "insufficient"),
        (Metric(0.15, 0.12, 0.18, n=500), {"max": 0.10}, "fail"),
        (Metric(0.95, None, None, n=500), {"min": 0.9}, "pass"),  # no CI: the value decides
        (Metric(0.95, 0.93, 0.97, n=10), {"min": 0.9}, "insufficient"),  # under min_n (30)
        (Metric(math.nan, None, None, n=500), {"min": 0.9}, "error"),
    ],
)
def test_status_per_check(tmp_path, pm, metric, bound, status):
    suite = _suite(tmp_path, [_gate(**bound)])
    (check,) = gate.decide(suite, _result(accuracy=metric), pm.audits)
    assert check.status == status, check.reason
    assert gate.verdict([check]) == ("passed" if status == "pass" else "blocked")


def test_check_carries_base_delta_and_rationale(tmp_path, pm):
    suite = _suite(tmp_path, [_gate(min=0.5)])
    (check,) = gate.decide(suite, _result(accuracy=Metric(0.9, 0.88, 0.92, n=100, base_value=0.7)), pm.audits)
    assert check.base_value == 0.7 and check.delta == pytest.approx(0.2)
    assert check.rationale == "why" and check.op == "min" and check.threshold == 0.5


def test_missing_metric_is_an_error(tmp_path, pm):
    suite = _suite(tmp_path, [_gate(min=0.5)])
    (check,) = gate.decide(suite, _result(), pm.audits)
    assert check.status == "error" and "no value" in check.reason


def test_crashed_audit_errors_every_gate(tmp_path, pm):
    suite = _suite(tmp_path, [_gate(min=0.5), _gate("macro_f1", min=0.5)])
    results = {"accuracy": AuditResult(kind="accuracy", error="plugin 'x': boom")}
    checks = gate.decide(suite, results, pm.audits)
    assert [c.status for c in checks] == ["error", "error"]
    assert "boom" in checks[0].reason
    assert gate.verdict(checks) == "blocked"


def test_required_audit_that_did_not_run_fails(tmp_path, pm):
    suite = _suite(tmp_path, [])
    (check,) = gate.decide(suite, {}, pm.audits)
    assert check.status == "fail" and check.metric == "(audit ran)"
    optional = _suite(tmp_path, [], required=False)
    assert gate.decide(optional, {}, pm.audits) == []


def test_no_checks_blocks():
    assert gate.verdict([]) == "blocked"


def test_ordered_puts_problems_first():
    rows = [{"status": s} for s in ("pass", "insufficient", "fail", "error")]
    assert [r["status"] for r in gate.ordered(rows)] == ["fail", "error", "insufficient", "pass"]
