"""The ``calibration`` audit: its metric functions against hand-computed values, the temperature
fit, the audit on fake sessions (CIs, base deltas, groups, the what-if, generation), the kit,
the report section, and one end-to-end pair on the tiny model: a planted overconfident model
is blocked by an ECE gate that a clean control passes."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from auditft.default_plugins.audits.calibration import metrics as M
from auditft.default_plugins.audits.calibration.audit import CalibrationAudit
from auditft.default_plugins.audits.calibration.figures import Scored, headline, interval
from auditft.default_plugins.audits.calibration.options import CalibrationOptions


def errors(conf, correct, bins=10):
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    return {k: float(v[0]) for k, v in M.calibration_errors(conf, correct, M.point_index(len(conf)), bins).items()}


# -- metric functions against hand-computed values ------------------------------------------------------


def test_a_perfectly_calibrated_model_has_ece_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20_000)
    correct = (rng.random(20_000) < conf).astype(float)  # right exactly as often as it says
    got = errors(conf, correct)
    assert got["ece"] < 0.015 and got["ece_equal_mass"] < 0.015 and got["mce"] < 0.03


def test_an_overconfident_model_has_the_known_ece():
    """Confidence 0.9 on every row, 60% right: every figure is the gap, 0.3."""
    conf, correct = np.full(100, 0.9), np.r_[np.ones(60), np.zeros(40)]
    got = errors(conf, correct)
    assert got == pytest.approx({"ece": 0.3, "ece_equal_mass": 0.3, "mce": 0.3})
    figures = M.all_figures(conf, correct, (conf - correct) ** 2, M.point_index(100), 10)
    assert figures["overconfidence"][0] == pytest.approx(0.3)


def test_equal_width_and_equal_mass_bins_by_hand():
    """2 bins. Equal width: [0.1] (acc 0, gap 0.1) and [0.6, 0.7, 0.9] (acc 2/3, conf 0.7333):
    0.25 x 0.1 + 0.75 x 0.0667 = 0.075, MCE 0.1. Equal mass: [0.1, 0.6] (acc 0.5, conf 0.35)
    and [0.7, 0.9] (acc 0.5, conf 0.8): 0.5 x 0.15 + 0.5 x 0.3 = 0.225."""
    got = errors([0.1, 0.6, 0.7, 0.9], [0, 1, 0, 1], bins=2)
    assert got == pytest.approx({"ece": 0.075, "mce": 0.1, "ece_equal_mass": 0.225})


def test_tied_confidences_share_an_equal_mass_bin():
    """Equal counts would split the tied rows by row order (right ones in one bin, wrong in
    another); ties stay together, so the order of the rows does not matter."""
    conf, correct = np.full(10, 0.8), np.r_[np.ones(5), np.zeros(5)]
    assert errors(conf, correct)["ece_equal_mass"] == pytest.approx(0.3)
    assert errors(conf, correct[::-1])["ece_equal_mass"] == pytest.approx(0.3)


def test_confidence_one_and_zero_fall_in_the_end_bins():
    assert M.width_bins(np.array([0.0, 0.05, 0.1, 0.999, 1.0]), 10).tolist() == [0, 0, 1, 9, 9]


def test_brier_score_by_hand():
    y = np.array([0, 1, 0])
    assert M.brier_rows(np.eye(2)[y], y).tolist() == [0.0, 0.0, 0.0]  # one-hot and right: 0
    proba = np.array([[0.7, 0.3], [0.5, 0.5], [0.0, 1.0]])
    # (0.3^2 + 0.3^2), (0.5^2 + 0.5^2), (1 + 1): summed over classes, not divided by K
    assert M.brier_rows(proba, y) == pytest.approx([0.18, 0.5, 2.0])


def test_bootstrap_resamples_are_the_statistic_on_the_resampled_rows():
    """The vectorised resampling computes exactly the point statistic on each resample."""
    rng = np.random.default_rng(3)
    conf, correct = rng.uniform(0.3, 1, 200), (rng.random(200) < 0.7).astype(float)
    idx = rng.integers(0, 200, size=(5, 200))
    boot = M.calibration_errors(conf, correct, idx, 10)
    for b in range(5):
        one = errors(conf[idx[b]], correct[idx[b]])
        assert {k: float(v[b]) for k, v in boot.items()} == pytest.approx(one)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5000, 3)) * 3
    true_t = 2.5  # labels drawn from softmax(logits / 2.5): the raw softmax is overconfident
    p_true = np.exp(logits / true_t)
    p_true /= p_true.sum(axis=1, keepdims=True)
    y = (p_true.cumsum(axis=1) < rng.random((5000, 1))).sum(axis=1)
    raw = np.exp(logits)
    raw /= raw.sum(axis=1, keepdims=True)
    t, before, after = M.fit_temperature(raw, y)
    assert t == pytest.approx(true_t, rel=0.08)
    assert after < before
    conf, correct = M.confidence_correct(raw, y)
    conf_t, correct_t = M.confidence_correct(M.temperature_scale(raw, t), y)
    assert errors(conf_t, correct_t)["ece"] < 0.03 < errors(conf, correct)["ece"]


def test_interval_is_widened_to_contain_the_value_but_its_upper_end_never_moves():
    low, high, widened = interval(np.array([0.2, 0.25, 0.3]), 0.1)
    assert widened and low == 0.1 and high == pytest.approx(0.2975)


def test_deltas_are_paired_on_the_same_rows():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1, 300)
    correct = (rng.random(300) < conf).astype(float)
    same = Scored(conf, correct, (conf - correct) ** 2)
    got = headline(same, same, bins=10, n_boot=200, seed=0)
    # the same model against itself: zero delta with a zero-width paired interval
    assert got["ece_delta"].value == 0 and got["ece_delta"].ci_low == got["ece_delta"].ci_high == 0
    assert got["ece"].base_value == got["ece"].value and got["ece"].n == 300


# -- the audit on fake sessions ------------------------------------------------------------------------


class Session:
    """A session whose adapter says ``confidence`` for its prediction and is right on ``right`` of
    the rows; the base model is calibrated-ish."""

    def __init__(self, data, confidence=0.95, right=0.6, logprobs=True):
        self.data, self.confidence, self.right, self.logprobs = data, confidence, right, logprobs

    def _proba(self, split, confidence, right, seed):
        rows = getattr(self.data, split)
        k = len(self.data.labels)
        rng = np.random.default_rng(seed)
        out = np.full((len(rows), k), (1 - confidence) / (k - 1))
        for i, ex in enumerate(rows):
            pred = ex.label if rng.random() < right else (ex.label + 1) % k
            out[i, pred] = confidence
        return out

    def adapter_proba(self, split):
        return self._proba(split, self.confidence, self.right, 0)

    def base_probe_proba(self, split):
        return self._proba(split, 0.7, 0.7, 1)

    def generate(self, prompts, *, which="adapter", max_new_tokens=None):
        refs = {ex.text: ex.response for ex in self.data.test}
        return [refs[p] if i % 5 else "no idea" for i, p in enumerate(prompts)]

    def answer_logprobs(self, prompts, answers, *, which="adapter"):
        if not self.logprobs:
            raise NotImplementedError("no token probabilities here")
        return np.full(len(prompts), np.log(0.99))


def job_for(tmp_path, task="classification", options=None, **session):
    from auditft.conformance.fakes import fake_job

    opts = CalibrationOptions(**(options or {}))
    return fake_job(task, opts, tmp_path / task, lambda data, seed: Session(data, **session)), opts


def test_an_overconfident_fake_adapter_gets_a_large_ece_with_a_ci_around_it(tmp_path):
    job, opts = job_for(tmp_path, confidence=0.95, right=0.6)
    result = CalibrationAudit(opts).run(job)
    ece, over = result.metrics["ece"], result.metrics["overconfidence"]
    acc = result.evidence["accuracy"]["adapter"]
    assert ece.value == pytest.approx(0.95 - acc) and over.value == pytest.approx(0.95 - acc)
    for m in result.metrics.values():
        assert m.ci_low <= m.value <= m.ci_high and m.n > 0
    assert ece.ci_low > 0.1 and ece.n == len(job.data.test)
    assert ece.base_value is not None and "ece_delta" in result.metrics and "brier_delta" in result.metrics
    assert result.metrics["ece_max_group"].min_n == opts.min_group_size
    assert result.metrics["ece_max_group"].n == min(g["count"] for g in result.evidence["groups"])
    assert sum(b["count"] for b in result.evidence["bin_table"]["adapter"]) == len(job.data.test)
    assert result.evidence["examples"] and all(e["predicted"] != e["truth"] for e in result.evidence["examples"])
    assert "overconfident by" in result.evidence["summary"]
    assert result.evidence["temperature"]["fitted"] > 1  # softening the probabilities helps
    assert result.metrics["ece_after_temperature"].value < ece.value
    json.dumps(result.to_dict())


def test_an_overconfident_adapter_fails_an_ece_gate(tmp_path):
    from auditft import gate
    from auditft.suite import AuditSpec
    from auditft.testing import isolated_plugin_manager

    job, opts = job_for(tmp_path, confidence=0.95, right=0.6)
    result = CalibrationAudit(opts).run(job)
    spec = AuditSpec(kind="calibration", gates=[{"metric": "ece", "max": 0.1, "rationale": "t"}])
    (check,) = gate.decide_specs([spec], {"calibration": result}, isolated_plugin_manager().audits)
    assert check.status == "fail"


def test_temperature_scaling_is_skipped_without_validation_rows(tmp_path):
    job, opts = job_for(tmp_path)
    job.data.validation = []
    result = CalibrationAudit(opts).run(job)
    assert "ece_after_temperature" not in result.metrics
    assert "skipped" in result.evidence["temperature"]
    assert any("Temperature scaling skipped" in n for n in result.notes)


def test_options_turn_temperature_off_and_reject_unknown_keys(tmp_path):
    job, opts = job_for(tmp_path, options={"temperature_scaling": False, "bins": 5, "n_boot": 200})
    result = CalibrationAudit(opts).run(job)
    assert "ece_after_temperature" not in result.metrics and len(result.evidence["bin_table"]["adapter"]) == 5
    with pytest.raises(ValueError):
        CalibrationOptions(bin=5)


def test_small_groups_keep_the_group_check_from_passing(tmp_path):
    from auditft import gate
    from auditft.suite import AuditSpec
    from auditft.testing import isolated_plugin_manager

    job, opts = job_for(tmp_path, options={"min_group_size": 10_000}, confidence=0.7, right=0.7)
    result = CalibrationAudit(opts).run(job)
    spec = AuditSpec(kind="calibration", gates=[{"metric": "ece_max_group", "max": 0.99, "rationale": "t"}])
    (check,) = gate.decide_specs([spec], {"calibration": result}, isolated_plugin_manager().audits)
    assert check.status == "insufficient"


def test_generation_confidence_comes_from_answer_token_probabilities(tmp_path):
    job, opts = job_for(tmp_path, task="generation")
    result = CalibrationAudit(opts).run(job)
    acc = result.evidence["accuracy"]["adapter"]
    assert acc < 0.99 and result.metrics["overconfidence"].value == pytest.approx(0.99 - acc)
    assert "ece_after_temperature" not in result.metrics


def test_generation_without_token_probabilities_gives_no_metrics_and_a_note(tmp_path):
    job, opts = job_for(tmp_path, task="generation", logprobs=False)
    result = CalibrationAudit(opts).run(job)
    assert result.metrics == {} and "no token probabilities" in result.notes[0]


def test_calibration_passes_the_kit():
    from auditft.testing import check_audit

    result = check_audit(importlib.import_module("auditft.default_plugins.audits.calibration"), "calibration")
    assert "ece" in result.metrics


def test_report_section_draws_the_reliability_diagram_and_escapes_data(tmp_path):
    from auditft.default_plugins.audits.calibration import auditft_report_sections

    job, opts = job_for(tmp_path)
    result = CalibrationAudit(opts).run(job)
    result.evidence["examples"][0]["text"] = "<script>alert(1)</script>"
    (section,) = auditft_report_sections({"audits": {"calibration": result.to_dict()}})
    assert section.order == 45 and "<svg" in section.html and "<polyline" in section.html
    assert "<script>" not in section.html and "&lt;script&gt;" in section.html
    assert auditft_report_sections({"audits": {}}) == []
