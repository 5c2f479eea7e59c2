"""Faulty audits (raise, hang past the timeout, swallow the timeout, return NaN or a malformed
result) never crash a run: the run completes, each faulty check shows ``error`` with its
reason, the gate blocks and the report is written. Data-stage audits run before tuning and
stop the run when they fail (``on_fail: stop``)."""

from __future__ import annotations

import json
import math
import time

import pytest

from auditft import hookimpl
from auditft.errors import SuiteError
from auditft.records import AuditResult, Metric
from auditft.run import execute, prepare
from auditft.testing import registered, toy_classification_data, write_suite


class _Audit:
    def __init__(self, kind, behave):
        self.kind, self.behave = kind, behave

    def __call__(self, options):  # the factory
        return self

    def run(self, job):
        return self.behave(self.kind, job)


def _raises(kind, job):
    raise RuntimeError("scorer exploded <b>")


def _hangs(kind, job):
    time.sleep(120)


def _swallows(kind, job):
    # a plugin that catches everything must still be stopped at its deadline
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except Exception:
            pass


def _nan(kind, job):
    return AuditResult(kind=kind, metrics={"score": Metric(math.nan, n=100), "other": Metric(0.9, n=100)})


def _malformed(kind, job):
    return {"score": 0.9}


def _fine(kind, job):
    return AuditResult(kind=kind, metrics={"score": Metric(0.9, n=100), "other": Metric(0.9, n=100)})


FAULTS = {"raises": _raises, "hangs": _hangs, "swallows": _swallows, "nan": _nan, "malformed": _malformed}


class FaultyPlugin:
    def __init__(self, behaviours, stage="model"):
        self.behaviours, self.stage = behaviours, stage

    @hookimpl
    def auditft_register_audits(self, register):
        for kind, behave in self.behaviours.items():
            register.add(kind, _Audit(kind, behave), metrics={"score": "higher", "other": "higher"},
                         stage=self.stage)


def _gates():
    return [{"metric": "score", "min": 0.5, "rationale": "r"}, {"metric": "other", "min": 0.5, "rationale": "r"}]


def test_faulty_audits_become_error_checks_and_the_run_completes(tmp_path, tiny_model_dir, pm):
    # 240 training rows: with 80 the tiny model stays at one class, which core now (rightly) fails
    toy_classification_data(tmp_path)
    audits = [{"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.0, "rationale": "r"}]}]
    audits += [{"kind": kind, "gates": _gates(), "timeout": "1s"} for kind in FAULTS]
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, audits=audits)
    with registered(pm, FaultyPlugin(FAULTS), "faulty"):
        started = time.perf_counter()
        report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")
        elapsed = time.perf_counter() - started
    assert elapsed < 100, "the hanging audits were not stopped at their 1 s timeout"
    run_dir = tmp_path / "reports" / report["run_id"]
    assert (run_dir / "manifest.json").exists() and (run_dir / "report.html").exists()
    assert json.loads((run_dir / "state.json").read_text())["phase"] == "complete"
    assert report["verdict"] == "blocked"
    by = {(c["audit"], c["metric"]): c for c in report["checks"]}
    assert by[("accuracy", "accuracy")]["status"] == "pass"  # healthy audits are unaffected
    for kind in ("raises", "hangs", "swallows", "malformed"):
        assert by[(kind, "score")]["status"] == by[(kind, "other")]["status"] == "error"
    assert "RuntimeError: scorer exploded" in report["audits"]["raises"]["error"]
    assert "timed out after 1 s" in report["audits"]["hangs"]["error"]
    assert "timed out after 1 s" in report["audits"]["swallows"]["error"]
    assert "malformed result: returned dict, not AuditResult" in report["audits"]["malformed"]["error"]
    # NaN: only the check on the NaN metric errs, with its reason; the report stays valid JSON
    assert by[("nan", "score")]["status"] == "error"
    assert by[("nan", "score")]["reason"] == "value is not a finite number"
    assert by[("nan", "other")]["status"] == "pass"
    json.loads((run_dir / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in report.json"))
    html = (run_dir / "report.html").read_text()
    assert "scorer exploded &lt;b&gt;" in html and "scorer exploded <b>" not in html


def _data_suite(tmp_path, tiny_model_dir, on_fail=None, threshold=0.95):
    # enough rows that the tiny model learns (a degenerate adapter is blocked by core since issue 15)
    toy_classification_data(tmp_path)
    check = {"kind": "datacheck", "gates": [{"metric": "score", "min": threshold, "rationale": "clean data"}]}
    if on_fail:
        check["on_fail"] = on_fail
    audits = [{"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.0, "rationale": "r"}]}, check]
    return write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, audits=audits)


def _seen_by_data_stage(kind, job):
    # a data audit sees the data and the base model, never an adapter
    assert not (job.work_dir.parent / "adapter").exists()
    job.models.base_embeddings("train")
    return AuditResult(kind=kind, metrics={"score": Metric(0.9, n=100)}, rows={"odd_rows": [3, 1]})


def test_failing_data_audit_stops_the_run_before_tuning(tmp_path, tiny_model_dir, pm):
    suite = _data_suite(tmp_path, tiny_model_dir)
    with registered(pm, FaultyPlugin({"datacheck": _seen_by_data_stage}, stage="data"), "datacheck"):
        report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")
    run_dir = tmp_path / "reports" / report["run_id"]
    assert report["verdict"] == "blocked" and report["state"] == "blocked"
    assert report["stopped"].startswith("stopped before tuning: data audit checks did not pass (datacheck.score fail")
    assert list((run_dir / "adapter").iterdir()) == [] and report["tuner"]["steps"] == 0
    by = {(c["audit"], c["metric"]): c for c in report["checks"]}
    assert by[("datacheck", "score")]["status"] == "fail"
    assert by[("accuracy", "accuracy")]["status"] == "insufficient"
    assert by[("accuracy", "accuracy")]["reason"].startswith("not run: stopped before tuning")
    assert "accuracy" not in report["audits"] and report["data_stage_audits"] == ["datacheck"]
    assert report["audits"]["datacheck"]["odd_rows"] == [3, 1]  # row findings at the top level
    assert "data_audit" in report["timings"] and "tuning" not in report["timings"]
    assert (run_dir / "manifest.json").exists()
    assert "Stopped before tuning." in (run_dir / "report.html").read_text()


def test_on_fail_continue_tunes_anyway(tmp_path, tiny_model_dir, pm):
    suite = _data_suite(tmp_path, tiny_model_dir, on_fail="continue")
    with registered(pm, FaultyPlugin({"datacheck": _seen_by_data_stage}, stage="data"), "datacheck"):
        report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")
    assert report["stopped"] is None and report["tuner"]["steps"] > 0
    by = {(c["audit"], c["metric"]): c["status"] for c in report["checks"]}
    assert by == {("datacheck", "score"): "fail", ("accuracy", "accuracy"): "pass",
                  ("core", "model_not_degenerate"): "pass"}
    assert list(report["timings"])[:3] == ["setup", "data_audit", "tuning"]


def test_passing_data_audit_does_not_stop(tmp_path, tiny_model_dir, pm):
    suite = _data_suite(tmp_path, tiny_model_dir, threshold=0.5)
    with registered(pm, FaultyPlugin({"datacheck": _seen_by_data_stage}, stage="data"), "datacheck"):
        report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")
    assert report["stopped"] is None and report["verdict"] == "passed"


def test_on_fail_is_refused_on_a_model_stage_audit(tmp_path, tiny_model_dir, pm):
    toy_classification_data(tmp_path, n_train=80, n_test=60)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, audits=[
        {"kind": "accuracy", "on_fail": "stop", "gates": [{"metric": "accuracy", "min": 0.0, "rationale": "r"}]}])
    with pytest.raises(SuiteError, match=r"audits\[0\]\.on_fail: only data-stage audits"):
        prepare(suite, pm)
