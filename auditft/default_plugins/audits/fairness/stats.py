"""Pure statistics behind the classification half of the ``fairness`` audit: group views,
per-group rates, fairness aggregates, a vectorised paired bootstrap and multiple-testing
corrections. No model, no plugin machinery; everything here is unit-tested directly.

Conventions (the same in the point estimates and in every bootstrap resample):

* a *view* partitions the test rows: one view per group column ("sex=female", ...) and, with
  two or more columns, one intersectional view ("sex=female & band=old");
* selection rate, TPR and FPR are one-vs-rest for the positive label;
* a rate with an empty denominator (TPR of a group without positives, FPR of a group without
  negatives, any rate of a group absent from a resample) is undefined (NaN) and left out of
  the differences and ratios; fairlearn would count an undefined TPR as 0.0, which inflates
  differences, so the test data of the cross-checks has both classes in every group;
* ``demographic_parity_ratio`` is 1.0 when every group's selection rate is 0 (0/0: parity).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# the one metric table: ``worst`` reads each aggregate's direction from it
from auditft.default_plugins.audits.fairness.metrics import AGGREGATES
from auditft.stats import benjamini_hochberg, holm

#: per-group rates, each reported with a bootstrap CI and a base-model value
RATES = ("accuracy", "selection_rate", "tpr", "fpr")


@dataclass(frozen=True)
class View:
    """One partition of the rows: ``codes[i]`` is the index into ``labels`` of row ``i``."""

    name: str
    kind: str  # "column" | "intersection"
    labels: list[str]
    codes: np.ndarray

    @property
    def size(self) -> int:
        return len(self.labels)


def build_views(groups: Sequence[dict[str, str]], columns: Sequence[str]) -> list[View]:
    """One view per column plus the intersection of all columns (when there are two or more).
    Group labels are sorted so the output is stable; only observed combinations appear."""
    def view(name: str, kind: str, keys: list[str]) -> View:
        labels = sorted(set(keys))
        index = {label: i for i, label in enumerate(labels)}
        return View(name, kind, labels, np.array([index[k] for k in keys], dtype=np.int64))

    def value(row: dict[str, str], column: str) -> str:
        raw = row.get(column)
        return "(missing)" if raw is None or raw == "" else str(raw)

    views = [view(c, "column", [f"{c}={value(g, c)}" for g in groups]) for c in columns]
    if len(columns) > 1:
        keys = [" & ".join(f"{c}={value(g, c)}" for c in columns) for g in groups]
        views.append(view(" & ".join(columns), "intersection", keys))
    return views


# -- per-group rates --------------------------------------------------------------------------


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def group_rates(codes: np.ndarray, size: int, y_pos: np.ndarray, p_pos: np.ndarray,
                correct: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group count, accuracy, selection rate, TPR and FPR.

    ``codes`` is (n,) for point estimates, or (B, n) for B resamples (each row a resample of
    group codes, with ``y_pos``/``p_pos``/``correct`` resampled the same way): the result then
    has shape (B, size). Boolean inputs: ``y_pos`` true label is positive, ``p_pos``
    predicted positive, ``correct`` prediction equals the true label.
    """
    codes = np.asarray(codes)
    shape = codes.shape[:-1] + (size,)
    flat = codes.reshape(-1, codes.shape[-1])
    offsets = (np.arange(flat.shape[0]) * size)[:, None]
    keys = (flat + offsets).ravel()
    total = flat.shape[0] * size

    def count(weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        return np.bincount(keys, weights=w, minlength=total).reshape(shape).astype(float)

    y_pos = np.asarray(y_pos, dtype=bool)
    p_pos = np.asarray(p_pos, dtype=bool)
    n = count()
    positives = count(y_pos)
    negatives = n - positives
    return {
        "count": n,
        "accuracy": _ratio(count(correct), n),
        "selection_rate": _ratio(count(p_pos), n),
        "tpr": _ratio(count(y_pos & p_pos), positives),
        "fpr": _ratio(count(~y_pos & p_pos), negatives),
    }


def _nan_extreme(values: np.ndarray, fn: Callable[..., np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices stay NaN
        return fn(values, axis=-1)


def _spread(values: np.ndarray) -> np.ndarray:
    return _nan_extreme(values, np.nanmax) - _nan_extreme(values, np.nanmin)


def aggregates(rates: dict[str, np.ndarray], base_rates: dict[str, np.ndarray] | None = None
               ) -> dict[str, np.ndarray]:
    """Fairness aggregates over the groups (last axis) of one view; NaN-aware (undefined
    rates are left out). ``max_group_regression`` needs ``base_rates`` (same rows)."""
    sel = rates["selection_rate"]
    sel_max, sel_min = _nan_extreme(sel, np.nanmax), _nan_extreme(sel, np.nanmin)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(sel_max > 0, sel_min / np.where(sel_max > 0, sel_max, 1), np.where(sel_max == 0, 1.0, np.nan))
    tpr_spread, fpr_spread = _spread(rates["tpr"]), _spread(rates["fpr"])
    out = {
        "demographic_parity_difference": _spread(sel),
        "demographic_parity_ratio": ratio,
        # fairlearn's "worst_case": the larger of the TPR and FPR differences
        "equalized_odds_difference": np.where(np.isnan(tpr_spread), fpr_spread,
                                              np.where(np.isnan(fpr_spread), tpr_spread,
                                                       np.maximum(tpr_spread, fpr_spread))),
        "equal_opportunity_difference": tpr_spread,
        "min_group_accuracy": _nan_extreme(rates["accuracy"], np.nanmin),
    }
    if base_rates is not None:
        out["max_group_regression"] = _nan_extreme(base_rates["accuracy"] - rates["accuracy"], np.nanmax)
    return out


def worst(per_view: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The worst value of every aggregate across views (max for "lower is better", min for
    "higher is better"), elementwise, so it also works per resample."""
    out: dict[str, np.ndarray] = {}
    for name in per_view[0]:
        stacked = np.stack([np.asarray(v[name], dtype=float) for v in per_view], axis=-1)
        fn = np.nanmax if AGGREGATES[name] == "lower" else np.nanmin
        out[name] = _nan_extreme(stacked, fn)
    return out


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices, seeded; shared by adapter and base so deltas are paired."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def percentile_ci(samples: np.ndarray, axis: int = 0) -> tuple[Any, Any]:
    """2.5th and 97.5th percentiles ignoring NaN resamples (NaN when every resample is NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(samples, 2.5, axis=axis), np.nanpercentile(samples, 97.5, axis=axis)


# -- significance of "this group is worse than the rest" ------------------------------------


def below_rest_pvalue(correct_in: int, n_in: int, correct_all: int, n_all: int) -> float | None:
    """One-sided Fisher exact test that the group's accuracy is below the accuracy of the other
    rows (equivalently, below the overall accuracy, which is their weighted mean). ``None``
    when the group is empty or is every row (nothing to compare with)."""
    from scipy.stats import fisher_exact

    n_rest = n_all - n_in
    if n_in <= 0 or n_rest <= 0:
        return None
    table = [[correct_in, n_in - correct_in], [correct_all - correct_in, n_rest - (correct_all - correct_in)]]
    return float(fisher_exact(table, alternative="less").pvalue)


CORRECTIONS: dict[str, Callable[[Sequence[float]], list[float]]] = {"holm": holm, "bh": benjamini_hochberg}
CORRECTION_NAMES = {"holm": "Holm-Bonferroni (family-wise error rate)",
                    "bh": "Benjamini-Hochberg (false discovery rate)"}
