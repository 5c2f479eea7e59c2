"""Bootstrap metrics cross-checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from auditft.stats import bootstrap_metrics, confusion


def test_point_values_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 3, 400))
    base = np.where(rng.random(400) < 0.5, y, rng.integers(0, 3, 400))
    out = bootstrap_metrics(y, pred, 3, base_pred=base, seed=0)
    assert out["accuracy"]["value"] == pytest.approx(accuracy_score(y, pred))
    assert out["macro_f1"]["value"] == pytest.approx(f1_score(y, pred, average="macro", labels=[0, 1, 2]))
    assert out["accuracy"]["base_value"] == pytest.approx(accuracy_score(y, base))
    assert out["accuracy_delta"]["value"] == pytest.approx(accuracy_score(y, pred) - accuracy_score(y, base))
    for name in ("accuracy", "macro_f1", "accuracy_delta", "macro_f1_delta"):
        assert out[name]["ci_low"] <= out[name]["value"] <= out[name]["ci_high"]
    assert confusion(y, pred, 3).sum() == 400


def test_ci_width_shrinks_with_n_and_is_seeded():
    def width(n):
        rng = np.random.default_rng(2)
        y = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < 0.8, y, 1 - y)
        out = bootstrap_metrics(y, pred, 2, seed=3)
        return out["accuracy"]["ci_high"] - out["accuracy"]["ci_low"]

    assert width(2000) < width(100) / 2.5
    assert width(100) == width(100)


def test_bootstrap_macro_f1_matches_sklearn_per_resample():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    pred = rng.integers(0, 2, 60)
    idx = np.random.default_rng(9).integers(0, 60, size=(1, 60))
    from auditft.stats import _boot_confusions, macro_f1_from

    got = macro_f1_from(_boot_confusions(y, pred, 2, idx))[0]
    assert got == pytest.approx(f1_score(y[idx[0]], pred[idx[0]], average="macro", labels=[0, 1], zero_division=0))


def test_perfect_predictions_have_degenerate_bootstrap_ci_from_300_rows():
    y = np.array([0, 1] * 200)
    out = bootstrap_metrics(y, y, 2, seed=0)
    assert out["accuracy"]["value"] == out["accuracy"]["ci_low"] == out["accuracy"]["ci_high"] == 1.0
    assert out["accuracy"]["details"]["interval"] == "percentile bootstrap"


def test_small_n_accuracy_gets_the_exact_interval_not_a_zero_width_bootstrap():
    """100/100 correct: the percentile bootstrap says 1.000-1.000; Clopper-Pearson says 0.964-1.000."""
    from scipy.stats import beta

    y = np.array([0, 1] * 50)
    out = bootstrap_metrics(y, y, 2, seed=0)["accuracy"]
    assert out["ci_high"] == 1.0 and out["ci_low"] == pytest.approx(0.025 ** (1 / 100))
    assert out["details"]["interval"] == "clopper-pearson"
    pred = y.copy()
    pred[:30] = 1 - pred[:30]  # 70 of 100 right
    out = bootstrap_metrics(y, pred, 2, seed=0)["accuracy"]
    assert out["ci_low"] == pytest.approx(beta.ppf(0.025, 70, 31))
    assert out["ci_high"] == pytest.approx(beta.ppf(0.975, 71, 30))


def test_exact_interval_covers_at_small_n_where_the_bootstrap_undercovers():
    """Coverage of the true accuracy 0.9 at n=40 over 400 seeded draws: Clopper-Pearson keeps
    at least 95% (it is conservative); the percentile bootstrap does not."""
    rng = np.random.default_rng(0)
    exact = boot = 0
    for seed in range(400):
        y = np.zeros(40, dtype=np.int64)
        pred = np.where(rng.random(40) < 0.9, 0, 1)
        out = bootstrap_metrics(y, pred, 2, seed=seed, n_boot=200)["accuracy"]
        exact += out["ci_low"] <= 0.9 <= out["ci_high"]
        raw = bootstrap_metrics(y, pred, 2, seed=seed, n_boot=200, exact_below=0)["accuracy"]
        boot += raw["ci_low"] <= 0.9 <= raw["ci_high"]
    assert exact / 400 >= 0.95 > boot / 400


def test_paired_delta_carries_the_exact_mcnemar_test():
    from scipy.stats import binomtest

    y = np.zeros(60, dtype=np.int64)
    pred = np.zeros(60, dtype=np.int64)
    base = np.zeros(60, dtype=np.int64)
    pred[:5] = 1   # adapter wrong on 5 rows
    base[5:20] = 1  # base wrong on 15 other rows
    mc = bootstrap_metrics(y, pred, 2, base_pred=base, seed=0)["accuracy_delta"]["details"]["mcnemar"]
    assert (mc["only_this_correct"], mc["only_other_correct"]) == (15, 5)
    assert mc["p_value"] == pytest.approx(binomtest(15, 20, 0.5).pvalue)
    same = bootstrap_metrics(y, pred, 2, base_pred=pred, seed=0)["accuracy_delta"]["details"]["mcnemar"]
    assert same["p_value"] == 1.0


def test_cluster_bootstrap_widens_the_interval_of_correlated_rows():
    """20 clusters of 10 identical rows: resampling rows pretends there are 200 independent
    rows; resampling clusters sees 20. The clustered CI is much wider and skips the exact one."""
    rng = np.random.default_rng(3)
    right = np.repeat(rng.random(20) < 0.7, 10)
    y = np.zeros(200, dtype=np.int64)
    pred = np.where(right, 0, 1)
    clusters = np.repeat(np.arange(20), 10)
    rows = bootstrap_metrics(y, pred, 2, seed=0, exact_below=0)["accuracy"]
    clustered = bootstrap_metrics(y, pred, 2, seed=0, clusters=clusters)["accuracy"]
    assert clustered["value"] == rows["value"]
    assert clustered["details"]["interval"] == "cluster bootstrap"
    assert clustered["ci_high"] - clustered["ci_low"] > 2.5 * (rows["ci_high"] - rows["ci_low"])
    # one row per cluster: the same resampling scheme as rows (same width up to noise)
    single = bootstrap_metrics(y, pred, 2, seed=0, clusters=np.arange(200))["accuracy"]
    assert abs((single["ci_high"] - single["ci_low"]) - (rows["ci_high"] - rows["ci_low"])) < 0.04


def test_bootstrap_means_proportions_exact_and_clustered():
    from auditft.stats import bootstrap_means

    scores = {"rate": [1.0] * 30 + [0.0] * 10, "f1": [0.5] * 40}
    out = bootstrap_means(scores, {"rate": [0.0] * 40, "f1": [0.5] * 40}, proportions=("rate",))
    assert out["rate"]["details"]["interval"] == "clopper-pearson"
    assert out["f1"]["details"]["interval"] == "percentile bootstrap"
    assert out["rate_delta"]["details"]["mcnemar"]["only_this_correct"] == 30
    assert "mcnemar" not in out["f1_delta"]["details"]
    clustered = bootstrap_means(scores, proportions=("rate",), clusters=[i // 4 for i in range(40)])
    assert clustered["rate"]["details"]["interval"] == "cluster bootstrap"
    with pytest.raises(ValueError, match="0/1"):
        bootstrap_means({"f1": [0.5] * 40}, proportions=("f1",))
