"""Core's degeneracy rules, the trivially-satisfied metric declarations and the gate rules
that use them (issue 15: no check can be passed by a model that does nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from auditft import gate, hookimpl
from auditft.degeneracy import ObservedSession, Recorder, chance_macro_f1, classification_profile, generation_profile
from auditft.errors import PluginError
from auditft.records import AuditResult, Metric
from auditft.registry import AuditRegistry
from auditft.suite import parse_suite

LABELS = ["routine", "urgent"]


# -- the rules -------------------------------------------------------------------------------------


def test_a_constant_classifier_is_degenerate_and_the_reason_names_the_class():
    y = np.array([0] * 75 + [1] * 45)
    profile = classification_profile("adapter", y, np.zeros(120, dtype=int), LABELS)
    assert profile.degenerate
    assert "the adapter predicts 'routine' for 100% of 120 rows" in profile.reasons[0]
    assert "no better than chance" in profile.reasons[1]                    # 0.625 = the majority rate


def test_random_guessing_on_balanced_data_is_no_better_than_chance():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    profile = classification_profile("fold 2 adapter", y, pred, LABELS)
    assert profile.degenerate and len(profile.reasons) == 1 and "no better than chance" in profile.reasons[0]


def test_a_real_classifier_is_not_degenerate_even_below_the_majority_rate_on_imbalanced_data():
    y = np.array([0] * 180 + [1] * 20)
    pred = y.copy()
    pred[:20] = 1          # 20 false alarms: accuracy 0.9 = the majority rate, but it finds the minority class
    profile = classification_profile("adapter", y, pred, LABELS)
    assert profile.figures["accuracy"] == pytest.approx(0.9) and profile.figures["majority_rate"] == 0.9
    assert not profile.degenerate, profile.reasons
    good = classification_profile("adapter", [0, 1] * 60, [0, 1] * 60, LABELS)
    assert not good.degenerate and "predicts 2 classes" in good.summary()


def test_chance_macro_f1_is_the_best_input_free_predictor():
    assert chance_macro_f1(np.array([0, 1] * 50), 2) == pytest.approx(0.5)        # random guessing
    # 95/5: "always 0" gets (0.974 + 0) / 2 = 0.487, prior-matched guessing (0.95 + 0.05) / 2 = 0.5
    assert chance_macro_f1(np.array([0] * 95 + [1] * 5), 2) == pytest.approx(0.5)
    # three classes 60/30/10: uniform guessing 0.307, always-0 0.25, priors 1/3
    assert chance_macro_f1(np.array([0] * 60 + [1] * 30 + [2] * 10), 3) == pytest.approx(1 / 3)


def test_generation_rules():
    prompts = [f"q{i}" for i in range(40)]
    abstains = generation_profile("adapter", prompts, ["I don't know."] * 40)
    assert abstains.degenerate and abstains.reasons == ["the adapter abstains on 100% of 40 answerable prompts"]
    # declining the unanswerable ones is right; answering the rest is a real model
    answers = ["I don't know."] * 10 + [f"answer {i}" for i in range(30)]
    fine = generation_profile("adapter", prompts, answers, unanswerable=set(prompts[:10]))
    assert not fine.degenerate and fine.figures["answerable"] == 30
    assert generation_profile("adapter", prompts, [""] * 40).reasons[-1].startswith("the adapter gives an empty")
    same = generation_profile("adapter", prompts, ["Paris."] * 40)
    assert same.degenerate and "same answer ('paris')" in same.reasons[0]
    # ...unless the references are that uniform too (then one answer is right)
    assert not generation_profile("adapter", prompts, ["Paris."] * 40, references=["paris"] * 40).degenerate
    # a prompt whose test reference is an abstention is not answerable
    refs = ["unknown"] * 39 + ["lima"]
    assert not generation_profile("adapter", prompts, ["unknown"] * 39 + ["lima"], references=refs).degenerate


def test_the_observed_session_records_every_scored_model_per_audit():
    class Session:
        data = type("D", (), {"test": [type("E", (), {"label": i % 2, "text": f"t{i}", "response": None})()
                                       for i in range(40)]})()

        def adapter_proba(self, split):
            return np.tile([0.9, 0.1], (40, 1))           # always 'routine'

        def base_probe_proba(self, split):
            return np.array([[1 - i % 2, i % 2] for i in range(40)], dtype=float)   # perfect

        def generate(self, prompts, *, which="adapter"):
            return ["unknown"] * len(prompts)

    session = ObservedSession(Session(), Recorder(LABELS, seed=0))
    session.recorder.start("fairness")
    session.adapter_proba("test")
    session.base_probe_proba("test")
    found = {p.model: p for p in session.recorder.profiles("fairness")}
    assert found["adapter"].degenerate and not found["base"].degenerate and found["base"].is_base
    fold = session.observe(Session(), name="fold 1 adapter")
    session.recorder.start("kfold")
    fold.adapter_proba("test")
    fold.generate(["a", "b"], which="base")
    models = {p.model for p in session.recorder.profiles("kfold")}
    assert models == {"fold 1 adapter", "fold 1 base"}


# -- the gate ---------------------------------------------------------------------------------------


def _suite(tmp_path, kind, gates, **audit):
    raw = {"name": "g", "task": "classification", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": [{"kind": kind, "gates": gates, **audit}]}
    return parse_suite(raw, tmp_path / "s.yaml")


CONSTANT = classification_profile("adapter", [0] * 60 + [1] * 60, [0] * 120, LABELS).to_dict()
GOOD = classification_profile("adapter", [0, 1] * 60, [0, 1] * 60, LABELS).to_dict()


def _fairness(scored):
    return {"fairness": AuditResult(kind="fairness", scored_models=scored, metrics={
        "equalized_odds_difference": Metric(0.0, 0.0, 0.0, n=60, min_n=30),
        "min_group_accuracy": Metric(0.5, 0.4, 0.6, n=60, min_n=30)})}


def test_a_trivially_satisfied_check_fails_on_a_degenerate_model_and_names_why(tmp_path, pm):
    suite = _suite(tmp_path, "fairness", [{"metric": "equalized_odds_difference", "max": 0.1, "rationale": "r"},
                                          {"metric": "min_group_accuracy", "min": 0.3, "rationale": "r"}])
    eod, group = gate.decide(suite, _fairness([CONSTANT]), pm.audits)
    assert eod.status == "fail"
    assert "the adapter predicts 'routine' for 100% of 120 rows" in eod.reason and "trivially" in eod.reason
    assert group.status == "pass"                       # not declared trivial: judged on its own figures
    (eod_ok, _) = gate.decide(suite, _fairness([GOOD]), pm.audits)
    assert eod_ok.status == "pass"


def test_a_degenerate_base_model_does_not_fail_the_adapter(tmp_path, pm):
    suite = _suite(tmp_path, "fairness", [{"metric": "equalized_odds_difference", "max": 0.1, "rationale": "r"}])
    base = classification_profile("base", [0] * 60 + [1] * 60, [0] * 120, LABELS).to_dict()
    (check,) = gate.decide(suite, _fairness([GOOD, base]), pm.audits)
    assert check.status == "pass"


def test_the_adapter_stands_in_when_core_saw_the_audit_score_no_model(tmp_path, pm):
    from auditft.degeneracy import Profile

    suite = _suite(tmp_path, "fairness", [{"metric": "equalized_odds_difference", "max": 0.1, "rationale": "r"}])
    (check,) = gate.decide(suite, _fairness([]), pm.audits, subject=Profile.from_dict(CONSTANT))
    assert check.status == "fail" and "predicts 'routine'" in check.reason
    (fine,) = gate.decide(suite, _fairness([]), pm.audits, subject=Profile.from_dict(GOOD))
    assert fine.status == "pass"


def test_collapsed_fold_models_fail_the_spread_check(tmp_path, pm):
    folds = [classification_profile(f"fold {i} adapter", [0] * 20 + [1] * 20, [0] * 40, LABELS).to_dict()
             for i in (1, 2, 3)]
    result = {"kfold": AuditResult(kind="kfold", scored_models=folds, metrics={
        "kfold_std_accuracy": Metric(0.0, 0.0, 0.0, n=120), "kfold_mean_accuracy": Metric(0.5, 0.5, 0.5, n=120)})}
    suite = _suite(tmp_path, "kfold", [{"metric": "kfold_std_accuracy", "max": 0.05, "rationale": "r"}])
    (check,) = gate.decide(suite, result, pm.audits)
    assert check.status == "fail" and "fold 1 adapter predicts 'routine'" in check.reason


@pytest.mark.parametrize(("metric", "bound", "status"), [
    (Metric(0.213, 0.128, 0.613, n=24), {"max": 0.05}, "fail"),        # issue 15: k=5 on 24 rows
    (Metric(0.30, 0.10, 0.50, n=10), {"min": 0.6}, "fail"),            # whole CI below, few rows
    (Metric(0.04, 0.01, 0.30, n=24), {"max": 0.05}, "insufficient"),   # value passes, CI crosses
    (Metric(0.08, 0.02, 0.30, n=24), {"max": 0.05}, "insufficient"),   # value misses, CI reaches back: too few rows
    # ...and with enough rows too: a CI that reaches the threshold is no evidence of a miss (the
    # point value decided before; benchmarks/validity.py measured 46% false fails at the threshold)
    (Metric(0.08, 0.02, 0.30, n=500), {"max": 0.05}, "insufficient"),
    (Metric(0.08, 0.06, 0.10, n=500), {"max": 0.05}, "fail"),          # whole CI over: fail
    (Metric(0.01, 0.00, 0.02, n=24), {"max": 0.05}, "insufficient"),   # whole CI passes, still too few rows
])
def test_a_whole_interval_on_the_failing_side_fails_at_any_n(tmp_path, pm, metric, bound, status):
    suite = _suite(tmp_path, "kfold", [{"metric": "kfold_std_accuracy", "rationale": "r", **bound}])
    (check,) = gate.decide(suite, {"kfold": AuditResult(kind="kfold", metrics={"kfold_std_accuracy": metric})},
                           pm.audits)
    assert check.status == status, check.reason


def test_the_core_check(tmp_path):
    from auditft.degeneracy import Profile

    bad = gate.subject_check(Profile.from_dict(CONSTANT), Profile.from_dict(GOOD))
    assert (bad.audit, bad.metric, bad.status, bad.value, bad.base_value) == \
        ("core", "model_not_degenerate", "fail", 0.0, 1.0)
    assert "predicts 'routine' for 100%" in bad.reason
    assert gate.subject_check(Profile.from_dict(GOOD)).status == "pass"
    assert gate.subject_check(None).status == "error"
    assert gate.subject_check(None, not_run="stopped before tuning").status == "insufficient"


def test_default_gates_apply_unless_the_suite_gates_the_metric_or_turns_them_off(tmp_path, pm):
    result = {"hallucination": AuditResult(kind="hallucination", metrics={
        "hallucination_rate": Metric(0.05, 0.01, 0.1, n=130),
        "answerable_accuracy_delta": Metric(-0.7, -0.8, -0.6, n=60)})}
    only = [{"metric": "hallucination_rate", "max": 0.2, "rationale": "r"}]
    raw = {"name": "g", "task": "generation", "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": [{"kind": "hallucination", "gates": only}]}
    checks = gate.decide(parse_suite(raw, tmp_path / "s.yaml"), result, pm.audits)
    assert [(c.metric, c.status) for c in checks] == [("hallucination_rate", "pass"),
                                                      ("answerable_accuracy_delta", "fail")]
    raw["audits"][0]["default_gates"] = False
    assert [c.metric for c in gate.decide(parse_suite(raw, tmp_path / "s.yaml"), result, pm.audits)] == \
        ["hallucination_rate"]
    raw["audits"][0] = {"kind": "hallucination", "gates": [
        *only, {"metric": "answerable_accuracy_delta", "min": -1.0, "rationale": "mine"}]}
    checks = gate.decide(parse_suite(raw, tmp_path / "s.yaml"), result, pm.audits)
    assert [(c.metric, c.rationale) for c in checks][1] == ("answerable_accuracy_delta", "mine")


# -- declarations -----------------------------------------------------------------------------------


def test_registration_checks_the_declarations():
    registry = AuditRegistry()
    with pytest.raises(PluginError, match="trivial_metrics"):
        registry.add("a", object, metrics={"x": "lower"}, trivial_metrics=("y",))
    with pytest.raises(PluginError, match="default gate"):
        registry.add("b", object, metrics={"x": "lower"}, default_gates=({"metric": "x", "rationale": "r"},))
    registry.add("c", object, metrics={"x": "lower"}, trivial_metrics=("x",))
    assert registry.get("c").describe()["trivial_metrics"] == ["x"]


def test_built_in_audits_declare_what_a_constant_model_satisfies(pm):
    assert {"equalized_odds_difference", "demographic_parity_difference", "flagged_groups"} <= \
        pm.audits.get("fairness").trivial_metrics
    assert {"kfold_std_accuracy", "generalization_gap"} <= pm.audits.get("kfold").trivial_metrics
    assert "hallucination_rate" in pm.audits.get("hallucination").trivial_metrics


@pytest.mark.parametrize(("kind", "task"), [("accuracy", "classification"), ("accuracy", "generation"),
                                            ("fairness", "classification"), ("fairness", "generation"),
                                            ("hallucination", "generation")])
def test_built_in_audits_let_no_constant_model_pass(pm, tmp_path, kind, task):
    from auditft.conformance import FakeModelSession, _run_fake, check_constant_model

    entry = pm.audits.get(kind)
    reference = _run_fake(entry, task, entry.options(), tmp_path, FakeModelSession)
    check_constant_model(entry, entry.plugin, task, entry.options(), tmp_path, reference)


def _parity_plugin(declare: bool):
    """A third-party audit with a parity-like metric: the gap in 'urgent' rate between sexes."""

    class Audit:
        def __init__(self, options):
            pass

        def run(self, job):
            pred = np.asarray(job.models.adapter_proba("test")).argmax(axis=1)
            sex = np.array([ex.groups["sex"] for ex in job.data.test])
            gap = abs(pred[sex == "female"].mean() - pred[sex == "male"].mean())
            return AuditResult(kind="parity", metrics={"selection_gap": Metric(float(gap), n=len(pred))})

    class Plugin:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add("parity", Audit, tasks=("classification",), metrics={"selection_gap": "lower"},
                         trivial_metrics=("selection_gap",) if declare else ())

    return Plugin()


def test_check_audit_fails_an_audit_that_a_constant_model_passes():
    from auditft.testing import PluginCheckError, check_audit

    with pytest.raises(PluginCheckError, match=r"constant model pass.*selection_gap.*trivial_metrics"):
        check_audit(_parity_plugin(declare=False), "parity", name="acme-parity", base_figures=False)
    check_audit(_parity_plugin(declare=True), "parity", name="acme-parity", base_figures=False)


# -- training health and trivial baselines ----------------------------------------------------------


def test_training_health_says_when_the_adapter_did_not_learn():
    from auditft.degeneracy import Profile, training_health

    flat = [(i * 10, 0.69 - 0.001 * i) for i in range(12)]
    falling = [(i * 10, 0.7 * 0.8 ** i) for i in range(12)]
    health = training_health(flat, Profile.from_dict(CONSTANT))
    assert health["learned"] is False and health["flat_loss"] is True
    assert health["message"].startswith("The adapter did not learn: its training loss stayed flat")
    assert "predicts 'routine' for 100%" in health["message"] and "more optimisation steps" in health["message"]
    good = training_health(falling, Profile.from_dict(GOOD))
    assert good["learned"] is True and good["message"] == ""
    # a falling loss does not hide majority-class predictions
    assert "predicts 'routine'" in training_health(falling, Profile.from_dict(CONSTANT))["message"]
    assert training_health([], None)["learned"] is None


def test_accuracy_reports_trivial_baselines_and_the_delta_against_the_strongest(pm, tmp_path):
    from auditft.conformance import FakeModelSession, _run_fake

    entry = pm.audits.get("accuracy")
    result = _run_fake(entry, "classification", entry.options(), tmp_path, FakeModelSession)
    baselines = result.evidence["baselines"]
    assert set(baselines["figures"]) == {"majority class", "bag of words", "base model probe"}
    # the toy labels are decided by words, so a bag-of-words model is (nearly) perfect
    assert baselines["figures"]["bag of words"]["accuracy"] > 0.9
    assert baselines["strongest"]["accuracy"] == "bag of words"
    versus = result.metrics["accuracy_vs_best_baseline"]
    strongest = baselines["figures"]["bag of words"]["accuracy"]
    assert versus.value == pytest.approx(result.metrics["accuracy"].value - strongest)
    assert versus.ci_low <= versus.value <= versus.ci_high and versus.ci_high < 0   # the fake is worse
    sections = __import__("auditft.default_plugins.audits.accuracy", fromlist=["x"]).auditft_report_sections(
        {"task": "classification", "audits": {"accuracy": result.to_dict()}})
    assert "Against trivial baselines" in sections[0].html and "bag of words" in sections[0].html


def test_a_trivial_metric_fails_when_the_adapter_is_degenerate_on_the_test_split():
    """The audit's own scored adapter looked fine on its probes (81% abstention, under the 95%
    rule) but core found the adapter degenerate on the test split: the hallucination_rate
    check, trivially satisfied by abstaining, must not pass (seen on SmolLM2 with a prompt
    that always says "I don't know")."""
    from auditft import gate
    from auditft.degeneracy import Profile
    from auditft.records import AuditResult, Metric

    fine = {"model": "adapter", "task": "generation", "split": "prompts", "n": 130, "degenerate": False,
            "reasons": [], "figures": {}}
    subject = Profile.from_dict({**fine, "split": "test", "n": 60, "degenerate": True,
                                 "reasons": ["the adapter gives the same answer ('i dont know') to 97% of 60 prompts"]})
    result = AuditResult(kind="hallucination", metrics={"hallucination_rate": Metric(0.008, 0.0, 0.04, n=130)},
                         scored_models=(fine,))
    assert gate._degenerate_models(result, subject) == [subject.summary()]
    folds = AuditResult(kind="kfold", metrics={}, scored_models=({**fine, "model": "fold 1 adapter"},))
    assert gate._degenerate_models(folds, subject) == []  # fold models are judged on their own
