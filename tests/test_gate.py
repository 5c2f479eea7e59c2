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


# -- evidence completeness, power, Holm (issue 15, part 2) ----------------------------------


def test_a_metric_without_sample_size_cannot_pass_a_minimum_n(tmp_path, pm):
    """accuracy declares min_n=30: n=12 is insufficient, and so is no n at all (it used to pass)."""
    suite = _suite(tmp_path, [_gate(metric="macro_f1", min=0.5)])
    (few,) = gate.decide(suite, _result(macro_f1=Metric(0.95, 0.93, 0.97, n=12)), pm.audits)
    (none,) = gate.decide(suite, _result(macro_f1=Metric(0.95, 0.93, 0.97, n=None)), pm.audits)
    assert few.status == "insufficient"
    assert none.status == "insufficient" and "no sample size" in none.reason
    # missing n never hides a failure the CI shows
    (bad,) = gate.decide(suite, _result(macro_f1=Metric(0.2, 0.1, 0.3, n=None)), pm.audits)
    assert bad.status == "fail"


def test_a_metric_declared_sample_free_passes_without_n(tmp_path):
    from auditft.testing import isolated_plugin_manager

    class Audit:
        def __init__(self, options):
            pass

    pm = isolated_plugin_manager()
    pm.audits.current_plugin = "test"
    pm.audits.add("counting", Audit, metrics={"groups": "lower", "share": "higher"}, min_n=30,
                  sample_free_metrics=("groups",))
    raw = {"name": "g", "task": "classification", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": [{"kind": "counting", "gates": [
               {"metric": "groups", "max": 0, "rationale": "r"}, {"metric": "share", "min": 0.5, "rationale": "r"}]}]}
    suite = parse_suite(raw, tmp_path / "s.yaml")
    result = {"counting": AuditResult(kind="counting", metrics={"groups": Metric(0.0), "share": Metric(0.9)})}
    groups, share = gate.decide(suite, result, pm.audits)
    assert groups.status == "pass"
    assert share.status == "insufficient"
    from auditft.errors import PluginError

    with pytest.raises(PluginError, match="sample_free_metrics"):
        pm.audits.add("other", Audit, metrics={"a": "lower"}, sample_free_metrics=("b",))


def test_power_check_marks_an_underpowered_proportion_gate_insufficient_by_design(tmp_path, pm):
    """accuracy >= 0.6 with margin 0.1 needs 100 rows (exact bound of 0.7 above 0.6): 60 rows
    are insufficient even for a model whose CI clears 0.6; a whole CI below still fails."""
    from auditft.power import items_needed

    assert items_needed("min", 0.6, 0.1) == 100
    suite = _suite(tmp_path, [_gate(min=0.6)])
    (check,) = gate.decide(suite, _result(accuracy=Metric(0.9, 0.8, 0.96, n=60)), pm.audits)
    assert check.status == "insufficient" and "needs at least 100 items" in check.reason, check.reason
    assert check.details["power"] == {"metric": "accuracy", "op": "min", "threshold": 0.6, "margin": 0.1,
                                      "needed": 100, "available": 60, "powered": False}
    (enough,) = gate.decide(suite, _result(accuracy=Metric(0.9, 0.8, 0.96, n=100)), pm.audits)
    assert enough.status == "pass" and enough.details["power"]["powered"]
    (bad,) = gate.decide(suite, _result(accuracy=Metric(0.3, 0.2, 0.4, n=60)), pm.audits)
    assert bad.status == "fail"
    # a gate's own margin: 0.3 better than 0.6 is detectable with fewer rows
    suite = _suite(tmp_path, [_gate(min=0.6, margin=0.3)])
    (wide,) = gate.decide(suite, _result(accuracy=Metric(0.9, 0.8, 0.96, n=60)), pm.audits)
    assert wide.status == "pass" and wide.details["power"]["needed"] < 60
    # macro_f1 is not a share: no power check
    suite = _suite(tmp_path, [_gate(metric="macro_f1", min=0.6)])
    (f1,) = gate.decide(suite, _result(macro_f1=Metric(0.9, 0.8, 0.96, n=60)), pm.audits)
    assert f1.status == "pass" and not (f1.details or {}).get("power")


def test_items_needed_matches_the_exact_bound_it_promises():
    from scipy.stats import beta

    from auditft.power import items_needed

    for op, t in (("min", 0.5), ("min", 0.8), ("max", 0.2), ("max", 0.3)):
        n = items_needed(op, t, 0.1)
        share = t + 0.1 if op == "min" else t - 0.1
        def bound(m):
            k = share * m
            return beta.ppf(0.025, k, m - k + 1) if op == "min" else beta.ppf(0.975, k + 1, m - k)
        clears = (lambda b: b > t) if op == "min" else (lambda b: b < t)
        assert clears(bound(n)) and not clears(bound(n - 1)), (op, t, n)
    assert items_needed("min", 1.0) is None and items_needed("max", 0.0) is None
    assert items_needed("min", 0.95, 0.1) == 72 == items_needed("max", 0.05, 0.1)  # p* clamped: 0.025 ** (1 / n) > 0.95


def test_holm_correction_demotes_passes_that_do_not_survive_the_family(tmp_path, pm):
    gates = [_gate(min=0.5), _gate(metric="macro_f1", min=0.5)]
    # each clears 0.5 alone (lower bound 0.51), one-sided p about 0.015 each: Holm over 2 needs <= 0.0125
    result = _result(accuracy=Metric(0.58, 0.51, 0.65, n=500), macro_f1=Metric(0.58, 0.51, 0.65, n=500))
    plain = gate.decide(_suite(tmp_path, gates), result, pm.audits)
    assert [c.status for c in plain] == ["pass", "pass"]
    raw = {"name": "g", "task": "classification", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "gate_correction": "holm", "audits": [{"kind": "accuracy", "gates": gates}]}
    corrected = gate.decide(parse_suite(raw, tmp_path / "s.yaml"), result, pm.audits)
    assert [c.status for c in corrected] == ["insufficient", "insufficient"]
    assert "Holm" in corrected[0].reason and corrected[0].details["correction"]["family"] == 2
    # a clear pass survives the correction
    strong = _result(accuracy=Metric(0.9, 0.88, 0.92, n=500), macro_f1=Metric(0.58, 0.51, 0.65, n=500))
    statuses = [c.status for c in gate.decide(parse_suite(raw, tmp_path / "s.yaml"), strong, pm.audits)]
    assert statuses == ["pass", "pass"]  # the strong one has p ~ 0, so the other is tested at 0.025


def test_check_pvalue_matches_the_ci_rule_at_the_boundary():
    from auditft.gate import Check, check_pvalue

    def check(value, low, high, op="min", t=0.5):
        return Check(audit="a", metric="m", value=value, ci_low=low, ci_high=high, op=op, threshold=t,
                     status="pass", base_value=None, delta=None, rationale="", reason="")

    assert check_pvalue(check(0.6, 0.5, 0.7)) == pytest.approx(0.025, abs=1e-4)  # bound exactly at t
    assert check_pvalue(check(0.4, 0.3, 0.5, op="max")) == pytest.approx(0.025, abs=1e-4)
    assert check_pvalue(check(0.6, None, None)) is None


def test_suite_rejects_an_unknown_gate_correction(tmp_path):
    from auditft.errors import SuiteError

    raw = {"name": "g", "task": "classification", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "gate_correction": "bonferroni",
           "audits": [{"kind": "accuracy", "gates": [_gate(min=0.5)]}]}
    with pytest.raises(SuiteError, match="gate_correction"):
        parse_suite(raw, tmp_path / "s.yaml")
