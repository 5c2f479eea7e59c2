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


def test_perfect_predictions_have_degenerate_ci():
    y = np.array([0, 1] * 50)
    out = bootstrap_metrics(y, y, 2, seed=0)
    assert out["accuracy"]["value"] == out["accuracy"]["ci_low"] == out["accuracy"]["ci_high"] == 1.0
