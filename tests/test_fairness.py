"""The ``fairness`` audit: fairlearn cross-checks, planted bias through the real gate, small
groups, multiple-testing corrections, counterfactual swaps, one real run on the tiny model."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from auditft import stats as core_stats
from auditft.default_plugins.audits.fairness import stats as fs
from auditft.default_plugins.audits.fairness import swaps
from auditft import gate
from auditft.data import Example, SplitData
from auditft.default_plugins.audits.fairness import FairnessAudit, FairnessOptions, auditft_report_sections
from auditft.suite import parse_suite

LABELS = ["routine", "urgent"]


class FakeModels:
    """Stands in for ``ModelSession``: fixed predictions, and a ``generate`` callable."""

    def __init__(self, pred=None, base=None, k=2, generate=None):
        self.pred, self.base, self.k, self._generate = pred, base, k, generate
        self.calls: list[tuple[str, list[str]]] = []

    def _proba(self, pred):
        proba = np.full((len(pred), self.k), 0.1 / max(self.k - 1, 1))
        proba[np.arange(len(pred)), pred] = 0.9
        return proba

    def adapter_proba(self, split):
        return self._proba(self.pred)

    def base_probe_proba(self, split):
        return self._proba(self.base)

    def generate(self, prompts, *, which="adapter", max_new_tokens=None):
        self.calls.append((which, list(prompts)))
        return [self._generate(p, which) for p in prompts]


def make_job(y, groups, pred, base, *, columns=None, labels=LABELS, seed=5, task="classification",
             generate=None, texts=None, **options):
    test = [Example(text=texts[i] if texts else f"row {i}", label=None if y is None else int(y[i]),
                    groups=groups[i], source="test.jsonl", row=i) for i in range(len(groups))]
    columns = columns if columns is not None else sorted(groups[0]) if groups else []
    data = SplitData(task=task, labels=labels, group_columns=columns, train=[], validation=[], test=test)
    opts = FairnessOptions(**options)
    models = FakeModels(None if pred is None else np.asarray(pred), None if base is None else np.asarray(base),
                        k=len(labels), generate=generate)
    return SimpleNamespace(task=task, data=data, options=opts, seed=seed, models=models, extra={})


def run(job):
    result = FairnessAudit(job.options).run(job)
    json.dumps(result.to_dict(), allow_nan=False)  # evidence is plain JSON: no NaN, no numpy types
    return result


def noisy(y, rng, accuracy):
    return np.where(rng.random(len(y)) < accuracy, y, 1 - y)


# -- 1. cross-checks against fairlearn and numpy -------------------------------------------------


def test_rates_and_aggregates_match_fairlearn_and_numpy():
    from fairlearn.metrics import (MetricFrame, demographic_parity_difference, demographic_parity_ratio,
                                   equal_opportunity_difference, equalized_odds_difference, selection_rate)
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(1)
    n = 900
    y = rng.integers(0, 2, n)
    pred = noisy(y, rng, 0.8)
    pred[rng.random(n) < 0.1] = 1  # some extra positives, so rates differ
    group = rng.choice(["a", "b", "c"], n)
    view = fs.build_views([{"g": g} for g in group], ["g"])[0]
    rates = fs.group_rates(view.codes, view.size, y == 1, pred == 1, pred == y)
    agg = fs.aggregates(rates)
    frame = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate},
                        y_true=y, y_pred=pred, sensitive_features=group)
    np.testing.assert_allclose(rates["accuracy"], frame.by_group["accuracy"].to_numpy())
    np.testing.assert_allclose(rates["selection_rate"], frame.by_group["selection_rate"].to_numpy())
    for label, g in zip(view.labels, "abc"):
        mask = group == g
        assert label == f"g={g}" and rates["count"][view.labels.index(label)] == mask.sum()
        assert rates["tpr"][view.labels.index(label)] == pytest.approx(pred[mask & (y == 1)].mean())
        assert rates["fpr"][view.labels.index(label)] == pytest.approx(pred[mask & (y == 0)].mean())
    kw = {"sensitive_features": group}
    assert agg["demographic_parity_difference"] == pytest.approx(demographic_parity_difference(y, pred, **kw))
    assert agg["demographic_parity_ratio"] == pytest.approx(demographic_parity_ratio(y, pred, **kw))
    assert agg["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(y, pred, **kw))
    assert agg["equal_opportunity_difference"] == pytest.approx(equal_opportunity_difference(y, pred, **kw))
    assert agg["min_group_accuracy"] == pytest.approx(frame.group_min()["accuracy"])

    # the audit itself (fairlearn MetricFrame point values) agrees with the direct computation
    base = noisy(y, rng, 0.75)
    result = run(make_job(y, [{"g": g} for g in group], pred, base))
    (only,) = result.evidence["views"]
    for row in only["groups"]:
        i = view.labels.index(row["label"])
        assert row["accuracy"] == pytest.approx(rates["accuracy"][i])
        assert row["selection_rate"] == pytest.approx(rates["selection_rate"][i])
        lo, hi = row["accuracy_ci"]
        assert lo <= row["accuracy"] <= hi
    m = result.metrics
    assert m["demographic_parity_difference"].value == pytest.approx(demographic_parity_difference(y, pred, **kw))
    assert m["demographic_parity_difference"].base_value == pytest.approx(demographic_parity_difference(y, base, **kw))
    assert m["equalized_odds_difference"].value == pytest.approx(equalized_odds_difference(y, pred, **kw))
    assert m["demographic_parity_ratio"].value == pytest.approx(demographic_parity_ratio(y, pred, **kw))
    base_acc = np.array([(base == y)[group == g].mean() for g in "abc"])
    acc = np.array([(pred == y)[group == g].mean() for g in "abc"])
    assert m["max_group_regression"].value == pytest.approx((base_acc - acc).max())
    assert m["max_group_regression"].base_value == 0.0
    for name, metric in m.items():
        assert metric.n == min(np.unique(group, return_counts=True)[1]), name
        if metric.ci_low is not None:
            assert metric.ci_low <= metric.value <= metric.ci_high, name


def test_bootstrap_aggregates_are_vectorised_point_estimates():
    """Each bootstrap row equals the point computation on that resample (the CI machinery is
    the same function as the point estimate)."""
    rng = np.random.default_rng(2)
    n = 200
    y, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    codes = rng.integers(0, 3, n)
    idx = fs.bootstrap_indices(n, 5, seed=1)
    boot = fs.aggregates(fs.group_rates(codes[idx], 3, (y == 1)[idx], (pred == 1)[idx], (pred == y)[idx]))
    for b in range(5):
        i = idx[b]
        one = fs.aggregates(fs.group_rates(codes[i], 3, y[i] == 1, pred[i] == 1, pred[i] == y[i]))
        for name, values in boot.items():
            assert values[b] == pytest.approx(float(one[name]))


def test_multiclass_is_one_vs_rest_for_the_positive_label():
    rng = np.random.default_rng(3)
    n = 300
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
    group = rng.choice(["x", "y"], n)
    job = make_job(y, [{"g": g} for g in group], pred, pred, labels=["a", "b", "c"], positive_label="c")
    result = run(job)
    assert result.evidence["positive_label"] == "c" and result.evidence["one_vs_rest"]
    assert any("one-vs-rest" in note for note in result.notes)
    row = next(r for r in result.evidence["views"][0]["groups"] if r["label"] == "g=x")
    mask = group == "x"
    assert row["selection_rate"] == pytest.approx((pred[mask] == 2).mean())
    assert row["tpr"] == pytest.approx((pred[mask & (y == 2)] == 2).mean())
    assert row["fpr"] == pytest.approx((pred[mask & (y != 2)] == 2).mean())
    assert row["accuracy"] == pytest.approx((pred[mask] == y[mask]).mean())  # accuracy stays multi-class
    with pytest.raises(ValueError, match="positive_label"):
        run(make_job(y, [{"g": g} for g in group], pred, pred, labels=["a", "b", "c"], positive_label="zzz"))


# -- 2. planted defect through the real gate ------------------------------------------------------


GATES = [
    {"metric": "demographic_parity_difference", "max": 0.1, "rationale": "parity"},
    {"metric": "demographic_parity_ratio", "min": 0.8, "rationale": "four-fifths rule"},
    {"metric": "equalized_odds_difference", "max": 0.1, "rationale": "equal error rates"},
    {"metric": "equal_opportunity_difference", "max": 0.1, "rationale": "equal recall"},
    {"metric": "min_group_accuracy", "min": 0.8, "rationale": "every group served"},
    {"metric": "max_group_regression", "max": 0.05, "rationale": "no group worse than base"},
    {"metric": "flagged_groups", "max": 0, "rationale": "no group significantly worse"},
]


def _suite(tmp_path, gates=GATES, task="classification"):
    raw = {"name": "f", "task": task, "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": [{"kind": "fairness", "gates": gates}]}
    return parse_suite(raw, tmp_path / "s.yaml")


def _population(n=2000, seed=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = [{"grp": g, "site": s} for g, s in zip(rng.choice(["A", "B"], n), rng.choice(["north", "south"], n))]
    return rng, y, groups


def test_planted_bias_fails_and_clean_control_passes(tmp_path, pm):
    rng, y, groups = _population()
    base = noisy(y, rng, 0.88)
    clean = noisy(y, rng, 0.92)  # independent of group
    biased = clean.copy()
    in_b = np.array([g["grp"] == "B" for g in groups])
    biased[in_b & (biased == 1) & (rng.random(len(y)) < 0.6)] = 0  # group B rarely gets "urgent"
    suite = _suite(tmp_path)

    clean_checks = gate.decide(suite, {"fairness": run(make_job(y, groups, clean, base))}, pm.audits)
    assert {c.metric: c.status for c in clean_checks} == {g["metric"]: "pass" for g in GATES}, \
        [(c.metric, c.reason) for c in clean_checks]
    assert gate.verdict(clean_checks) == "passed"

    result = run(make_job(y, groups, biased, base))
    checks = {c.metric: c for c in gate.decide(suite, {"fairness": result}, pm.audits)}
    for metric in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                   "equal_opportunity_difference", "min_group_accuracy", "max_group_regression", "flagged_groups"):
        assert checks[metric].status == "fail", (metric, checks[metric].reason)
    assert checks["demographic_parity_difference"].base_value is not None
    assert checks["demographic_parity_difference"].delta > 0.2
    assert result.evidence["flagged"] == ["grp=B"]
    assert result.evidence["regressions"][0]["label"].startswith("grp=B")
    assert result.evidence["regressions"][0]["drop"] > 0.2


# -- 3. small groups ---------------------------------------------------------------------------


def test_small_group_makes_dependent_checks_insufficient(tmp_path, pm):
    rng, y, groups = _population(n=1000)
    for g in groups[:12]:
        g["grp"] = "C"  # 12 rows: under min_group_size
    pred = noisy(y, rng, 0.95)
    result = run(make_job(y, groups, pred, pred))
    assert result.evidence["insufficient_groups"] == [{"label": "grp=C", "view": "grp", "count": 12}]
    shown = {g["label"]: g for v in result.evidence["views"] for g in v["groups"]}
    assert shown["grp=C"]["small"] and shown["grp=C"]["count"] == 12  # shown, not dropped
    assert any("grp=C (n=12)" in note and "insufficient" in note for note in result.notes)
    lenient = [{**g, **({"max": 1.0} if "max" in g else {"min": 0.0})} for g in GATES]
    checks = gate.decide(_suite(tmp_path, lenient), {"fairness": result}, pm.audits)
    assert checks and all(c.status == "insufficient" and c.n == 12 for c in checks), \
        [(c.metric, c.reason) for c in checks]
    html = auditft_report_sections(report={"audits": {"fairness": result.to_dict()}})[0].html
    assert "small (n &lt; 30)" in html and "grp=C" in html


def test_raised_min_group_size_still_blocks_a_pass(tmp_path, pm):
    """Groups of ~500 with min_group_size=600: each metric carries the raised floor
    (``Metric.min_n``), so the gate marks every check insufficient."""
    rng, y, groups = _population(n=1000)
    pred = noisy(y, rng, 0.95)
    result = run(make_job(y, groups, pred, pred, min_group_size=600))
    assert len(result.evidence["insufficient_groups"]) == 4
    assert all(m.min_n == 600 for name, m in result.metrics.items() if name != "counterfactual_change_rate")
    checks = gate.decide(_suite(tmp_path), {"fairness": result}, pm.audits)
    assert all(c.status != "pass" for c in checks), [(c.metric, c.status) for c in checks]
    assert {c.status for c in checks} == {"insufficient"}


def test_intersections_are_shown_and_gated_only_on_request():
    rng, y, groups = _population(n=400)
    pred = noisy(y, rng, 0.9)
    result = run(make_job(y, groups, pred, pred))
    views = {v["name"]: v for v in result.evidence["views"]}
    assert set(views) == {"grp", "site", "grp & site"}
    assert not views["grp & site"]["gated"] and views["grp"]["gated"]
    assert any(g["label"] == "grp=A & site=north" for g in views["grp & site"]["groups"])
    assert all(g["p_value"] is None for g in views["grp & site"]["groups"])
    gated = run(make_job(y, groups, pred, pred, gate_intersections=True))
    assert gated.evidence["tested_groups"] == result.evidence["tested_groups"] + 4
    # a finer partition can only widen differences: the intersectional worst case dominates
    assert gated.metrics["demographic_parity_difference"].value >= result.metrics["demographic_parity_difference"].value
    assert gated.metrics["min_group_accuracy"].value <= result.metrics["min_group_accuracy"].value


# -- 4. multiple testing ------------------------------------------------------------------------


def test_holm_and_bh_match_hand_worked_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert core_stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04 -> running min from the top
    assert core_stats.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert core_stats.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert core_stats.holm([]) == [] and core_stats.benjamini_hochberg([]) == []


def test_fisher_below_rest_matches_hypergeometric_by_hand():
    # group: 2 of 5 correct; rest: 5 of 5. X = correct in group ~ Hypergeom(N=10, K=7, n=5);
    # P(X <= 2) = P(X = 2) = C(7,2) C(3,3) / C(10,5) = 21 / 252
    assert fs.below_rest_pvalue(2, 5, 7, 10) == pytest.approx(21 / 252)
    assert fs.below_rest_pvalue(5, 5, 7, 10) == pytest.approx(1.0)
    assert fs.below_rest_pvalue(3, 10, 3, 10) is None  # the group is every row


def test_correction_option_is_applied_and_reported():
    rng, y, groups = _population(n=1200, seed=9)
    pred = noisy(y, rng, 0.9)
    for option in ("holm", "bh"):
        result = run(make_job(y, groups, pred, pred, correction=option))
        rows = [g for v in result.evidence["views"] if v["gated"] for g in v["groups"]]
        raw = [g["p_value"] for g in rows]
        expected = core_stats.holm(raw) if option == "holm" else core_stats.benjamini_hochberg(raw)
        assert [g["p_adjusted"] for g in rows] == pytest.approx(expected)
        assert result.evidence["correction"] == option
        name = "Holm" if option == "holm" else "Benjamini-Hochberg"
        assert any(name in note for note in result.notes)


# -- 5. counterfactual probes ---------------------------------------------------------------------


def test_swap_is_whole_word_and_case_preserving():
    gender = swaps.Swapper(swaps.swaps_by_dimension()["gender"])
    assert gender("He said his name is Michael.") == "She said her name is Jessica."
    assert gender("THE HERO: HE is there; hello") == "THE HERO: SHE is there; hello"  # no 'the'/'hero'/'hello'
    assert gender("Jessica's brother") == "Michael's sister"
    assert gender("nothing here to change") == "nothing here to change"
    ethnicity = swaps.Swapper(swaps.swaps_by_dimension()["ethnicity"])
    assert ethnicity("An African American man, Jamal") == "An European American man, Greg"
    assert ethnicity("african american") == "european american"
    simple = swaps.Swapper([("he", "she")])
    assert simple("he, she") == "she, he"  # simultaneous, not sequential
    for entry in swaps.swap_sets():
        assert entry["source"] and entry["pairs"]


def test_counterfactual_change_rate_with_fake_generate(tmp_path, pm):
    texts = ["Should Michael be seen today? He has chest pain.",   # gender swap
             "Greg reports a headache.",                            # ethnicity swap
             "Patient reports a cough.",                            # nothing to swap
             "Is she fit to fly?"]                                  # gender swap

    def generate(prompt, which):
        if which == "adapter" and ("Jessica" in prompt or "Jamal" in prompt):
            return "routine follow up next month"  # the adapter answers differently for the twin
        return f"urgent review {prompt.split()[0]}"

    groups = [{"sex": "x"}] * len(texts)
    job = make_job(None, groups, None, None, task="generation", generate=generate, texts=texts, n_boot=100)
    result = run(job)
    metric = result.metrics["counterfactual_change_rate"]
    assert metric.n == 3 and metric.value == pytest.approx(2 / 3) and metric.base_value == 0.0
    assert metric.ci_low <= metric.value <= metric.ci_high
    assert set(result.metrics) == {"counterfactual_change_rate"}
    assert any("no classes" in note for note in result.notes)
    assert result.evidence["dimensions"]["gender"] == {"n": 2, "change_rate": 0.5, "base_change_rate": 0.0}
    assert result.evidence["dimensions"]["ethnicity"]["change_rate"] == 1.0
    assert result.evidence["examples"][0]["adapter"]["changed"]
    assert {which for which, _ in job.models.calls} == {"adapter", "base"}
    # the twin's answer is swapped back before comparing: repeating the swapped name is no change
    assert result.evidence["examples"][-1]["swapped"] == "Is he fit to fly?"
    html = auditft_report_sections(report={"audits": {"fairness": result.to_dict()}})[0].html
    assert "Greg reports a headache." in html and "Bertrand" in html
    check, = gate.decide(_suite(tmp_path, [{"metric": "counterfactual_change_rate", "max": 0.99, "rationale": "r"}],
                                "generation"), {"fairness": result}, pm.audits)
    assert check.status == "insufficient"  # 3 pairs are far below the evidence floor


def test_no_swappable_prompt_means_no_evidence(tmp_path, pm):
    job = make_job(None, [{}, {}], None, None, columns=[], task="generation", texts=["a cough", "a cold"],
                   generate=lambda p, w: "x")
    result = run(job)
    metric = result.metrics["counterfactual_change_rate"]
    assert metric.n == 0 and any("No test prompt" in note for note in result.notes)
    check, = gate.decide(_suite(tmp_path, [{"metric": "counterfactual_change_rate", "max": 0.2, "rationale": "r"}],
                                "generation"), {"fairness": result}, pm.audits)
    assert check.status == "insufficient"
    assert job.models.calls == []


# -- options, registration ------------------------------------------------------------------------


def test_registered_with_every_gate_metric(pm):
    entry = pm.audits.get("fairness")
    assert entry is not None and entry.min_n == 30 and set(entry.tasks) == {"classification", "generation"}
    assert entry.metrics["flagged_groups"] == "lower" and entry.metrics["demographic_parity_ratio"] == "higher"
    with pytest.raises(Exception, match="extra"):
        FairnessOptions.model_validate({"nope": 1})


def test_no_group_columns_is_a_clear_error():
    with pytest.raises(ValueError, match="group_columns"):
        run(make_job([0, 1], [{}, {}], [0, 1], [0, 1], columns=[]))


def test_fairlearn_bootstrap_option_gives_similar_cis():
    rng = np.random.default_rng(6)
    n = 240
    y = rng.integers(0, 2, n)
    pred = noisy(y, rng, 0.8)
    groups = [{"g": g} for g in rng.choice(["a", "b"], n)]
    fast = run(make_job(y, groups, pred, pred, n_boot=50))
    slow = run(make_job(y, groups, pred, pred, n_boot=50, per_group_ci="fairlearn"))
    for a, b in zip(fast.evidence["views"][0]["groups"], slow.evidence["views"][0]["groups"]):
        assert a["accuracy"] == b["accuracy"]
        for lo_hi in ("accuracy_ci", "selection_rate_ci"):
            assert a[lo_hi] == pytest.approx(b[lo_hi], abs=0.06)
    assert slow.evidence["per_group_ci"] == "fairlearn"


def test_undefined_rates_are_left_out_not_zero():
    # group b has no positives: its TPR is undefined (fairlearn would say 0.0 and report a gap of 1.0)
    y = np.array([1, 1, 0, 0, 0, 0])
    pred = np.array([1, 1, 0, 0, 1, 0])
    rates = fs.group_rates(np.array([0, 0, 0, 1, 1, 1]), 2, y == 1, pred == 1, pred == y)
    assert math.isnan(rates["tpr"][1])
    agg = fs.aggregates(rates)
    assert agg["equal_opportunity_difference"] == 0.0
    assert agg["equalized_odds_difference"] == pytest.approx(1 / 3)
    assert fs.aggregates(fs.group_rates(np.array([0, 1]), 2, np.array([True, False]), np.array([False, False]),
                                        np.array([False, True])))["demographic_parity_ratio"] == 1.0


# -- 6. end to end on the tiny model -------------------------------------------------------------


def test_end_to_end_run_with_fairness(toy, pm):
    import importlib.resources

    import jsonschema

    from auditft.run import execute, prepare
    from auditft.testing import write_suite

    directory, _ = toy
    suite = write_suite(directory / "fair.yaml", model_dir=_model_dir(directory), name="fair", audits=[
        {"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.5, "rationale": "toy"}]},
        {"kind": "fairness", "options": {"n_boot": 100},
         "gates": [{"metric": "demographic_parity_difference", "max": 0.5, "rationale": "toy"},
                   {"metric": "min_group_accuracy", "min": 0.5, "rationale": "toy"},
                   {"metric": "flagged_groups", "max": 0, "rationale": "toy"}]}])
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="alice")
    run_dir = directory / "reports" / report["run_id"]
    saved = json.loads((run_dir / "report.json").read_text())
    fairness = saved["audits"]["fairness"]
    assert fairness["error"] is None, fairness["error"]
    assert {"sex", "band", "sex & band"} == {v["name"] for v in fairness["evidence"]["views"]}
    checks = [c for c in saved["checks"] if c["audit"] == "fairness"]
    assert {c["metric"] for c in checks} == {"demographic_parity_difference", "min_group_accuracy", "flagged_groups"}
    assert all(c["status"] in ("pass", "fail", "insufficient") for c in checks)
    assert all(c["base_value"] is not None for c in checks)
    schema = json.loads(importlib.resources.files("auditft.report").joinpath("report.schema.json").read_text())
    jsonschema.validate(saved, schema)
    html = (run_dir / "report.html").read_text()
    assert 'id="audit-fairness"' in html
    assert "Fairness" in html and "accuracy by group" in html


def _model_dir(directory):
    import yaml

    return yaml.safe_load((directory / "suite.yaml").read_text())["model"]["base"]
