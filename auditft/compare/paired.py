"""Paired bootstrap differences between two runs scored on the same test rows.

Every resample draws the test rows once (or whole clusters, when the rows carry a
``data.cluster_column``) and scores both runs on that same draw, so the spread of the
difference leaves out the row-to-row luck both runs share. A resample is a weight per row
(how often it was drawn): one ``(B, n)`` matrix times per-row indicator columns gives every
count at once, for any number of resamples.

Figures computable from the per-row outcomes (``auditft.compare.evidence``):

* classification, audit ``accuracy``: ``accuracy``, ``macro_f1`` and their ``_delta`` against
  the base model (when both runs scored it);
* classification, audit ``fairness``: the worst case over the gated views of
  ``demographic_parity_difference``, ``demographic_parity_ratio``,
  ``equalized_odds_difference``, ``equal_opportunity_difference``, ``min_group_accuracy`` and
  ``max_group_regression``, on the audit's positive label (the same definitions as the audit);
* generation, audit ``accuracy``: ``exact_match``, ``token_f1``, ``answer_contained`` and their
  ``_delta``.

Anything else (k-fold spreads, calibration, robustness flips, hallucination probes, counts of
flags) is not a function of these rows, and says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auditft import stats

N_BOOT = 2000
CLASSIFICATION_ACCURACY = ("accuracy", "macro_f1", "accuracy_delta", "macro_f1_delta")
GENERATION_ACCURACY = ("exact_match", "token_f1", "answer_contained",
                       "exact_match_delta", "token_f1_delta", "answer_contained_delta")
FAIRNESS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
            "equal_opportunity_difference", "min_group_accuracy", "max_group_regression")
#: which way is better for figures no gate names
HIGHER_IS_BETTER = {*CLASSIFICATION_ACCURACY, *GENERATION_ACCURACY, "demographic_parity_ratio", "min_group_accuracy"}


@dataclass(frozen=True)
class Outcomes:
    """One run's per-row outcomes as arrays (see ``evidence``)."""

    task: str
    truth: np.ndarray | None = None
    adapter: np.ndarray | None = None
    base: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    base_scores: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, task: str, rows: list[dict[str, Any]]) -> Outcomes:
        if task == "classification":
            base = None if any(r.get("base") is None for r in rows) else np.array([r["base"] for r in rows])
            return cls(task, truth=np.array([r["truth"] for r in rows], dtype=np.int64),
                       adapter=np.array([r["adapter"] for r in rows], dtype=np.int64),
                       base=None if base is None else base.astype(np.int64))
        scores = {name: np.array([r["adapter"][name] for r in rows], dtype=float)
                  for name in ("exact_match", "token_f1", "answer_contained")}
        base_scores = {} if any(r.get("base") is None for r in rows) else {
            name: np.array([r["base"][name] for r in rows], dtype=float) for name in scores}
        return cls(task, scores=scores, base_scores=base_scores)


@dataclass(frozen=True)
class Fairness:
    """What the fairness figures need beyond the outcomes: the gated views (each a list of
    group columns; one column, or several for an intersection) and the positive label."""

    views: list[list[str]]
    positive: int


def weights(n: int, n_boot: int, seed: int, clusters: list[Any] | None = None) -> np.ndarray:
    """(n_boot, n) how often each row is drawn in each resample; whole clusters when given."""
    rng = np.random.default_rng(seed)
    if clusters is not None:
        ids, groups = stats.cluster_ids(clusters)
        return stats.cluster_weights(groups, n_boot, rng)[:, ids].astype(float)
    idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _nan(fn: Callable[..., np.ndarray], values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample missing every group stays NaN
        return fn(values, axis=-1)


def _confusions(truth: np.ndarray, pred: np.ndarray, k: int, w: np.ndarray) -> np.ndarray:
    onehot = np.zeros((len(truth), k * k))
    onehot[np.arange(len(truth)), truth * k + pred] = 1.0
    return (w @ onehot).reshape(-1, k, k)


def _group_rates(codes: np.ndarray, size: int, y_pos: np.ndarray, p_pos: np.ndarray, correct: np.ndarray,
                 w: np.ndarray) -> dict[str, np.ndarray]:
    member = np.zeros((len(codes), size))
    member[np.arange(len(codes)), codes] = 1.0

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        cols = member if mask is None else member * mask[:, None]
        return w @ cols  # (m, groups)

    n, positives = count(), count(y_pos.astype(float))
    return {"accuracy": _ratio(count(correct.astype(float)), n), "selection_rate": _ratio(count(p_pos.astype(float)), n),
            "tpr": _ratio(count((y_pos & p_pos).astype(float)), positives),
            "fpr": _ratio(count((~y_pos & p_pos).astype(float)), n - positives)}


def _fairness(out: Outcomes, groups: list[dict[str, str]], spec: Fairness, w: np.ndarray) -> dict[str, np.ndarray]:
    """The fairness figures of one run on the weighted rows: worst case over the views."""
    assert out.truth is not None and out.adapter is not None
    y_pos = out.truth == spec.positive
    per_view: list[dict[str, np.ndarray]] = []
    for columns in spec.views:
        keys = [" & ".join(f"{c}={g.get(c) or '(missing)'}" for c in columns) for g in groups]
        labels = sorted(set(keys))
        codes = np.array([labels.index(k) for k in keys], dtype=np.int64)
        rates = _group_rates(codes, len(labels), y_pos, out.adapter == spec.positive, out.adapter == out.truth, w)
        sel = rates["selection_rate"]
        sel_max, sel_min = _nan(np.nanmax, sel), _nan(np.nanmin, sel)
        tpr = _nan(np.nanmax, rates["tpr"]) - _nan(np.nanmin, rates["tpr"])
        fpr = _nan(np.nanmax, rates["fpr"]) - _nan(np.nanmin, rates["fpr"])
        view = {
            "demographic_parity_difference": sel_max - sel_min,
            "demographic_parity_ratio": np.where(sel_max > 0, _ratio(sel_min, sel_max), np.where(sel_max == 0, 1.0, np.nan)),
            "equalized_odds_difference": np.where(np.isnan(tpr), fpr, np.where(np.isnan(fpr), tpr, np.maximum(tpr, fpr))),
            "equal_opportunity_difference": tpr,
            "min_group_accuracy": _nan(np.nanmin, rates["accuracy"]),
        }
        if out.base is not None:
            base = _group_rates(codes, len(labels), y_pos, out.base == spec.positive, out.base == out.truth, w)
            view["max_group_regression"] = _nan(np.nanmax, base["accuracy"] - rates["accuracy"])
        per_view.append(view)
    worst: dict[str, np.ndarray] = {}
    for name in per_view[0] if per_view else ():
        stacked = np.stack([v[name] for v in per_view], axis=-1)
        worst[name] = _nan(np.nanmin if name in HIGHER_IS_BETTER else np.nanmax, stacked)
    return worst


def figures(out: Outcomes, k: int, w: np.ndarray, *, groups: list[dict[str, str]] | None = None,
            fairness: Fairness | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``{audit: {metric: (m,) values}}`` of one run under each weight row of ``w``."""
    found: dict[str, dict[str, np.ndarray]] = {"accuracy": {}}
    acc = found["accuracy"]
    if out.task == "classification":
        assert out.truth is not None and out.adapter is not None
        cm = _confusions(out.truth, out.adapter, k, w)
        acc["accuracy"], acc["macro_f1"] = stats.accuracy_from(cm), stats.macro_f1_from(cm)
        if out.base is not None:
            base_cm = _confusions(out.truth, out.base, k, w)
            acc["accuracy_delta"] = acc["accuracy"] - stats.accuracy_from(base_cm)
            acc["macro_f1_delta"] = acc["macro_f1"] - stats.macro_f1_from(base_cm)
        if fairness is not None and groups is not None and fairness.views:
            found["fairness"] = _fairness(out, groups, fairness, w)
    else:
        total = w.sum(axis=1)
        for name, values in out.scores.items():
            acc[name] = (w @ values) / total
            if name in out.base_scores:
                acc[f"{name}_delta"] = acc[name] - (w @ out.base_scores[name]) / total
    return found


def paired_difference(a: np.ndarray, b: np.ndarray, point_a: float, point_b: float) -> dict[str, Any]:
    """``b - a`` with its 95% paired percentile interval (resamples where either is undefined
    are left out)."""
    diffs = b - a
    diffs = diffs[np.isfinite(diffs)]
    if not diffs.size or not (np.isfinite(point_a) and np.isfinite(point_b)):
        return {"difference": None, "ci_low": None, "ci_high": None, "resamples": int(diffs.size),
                "reason": "undefined on these rows (a group or class is empty)"}
    return {"difference": float(point_b - point_a), "ci_low": float(np.percentile(diffs, 2.5)),
            "ci_high": float(np.percentile(diffs, 97.5)), "resamples": int(diffs.size)}


def pairable(task: str, audit: str, metric: str) -> str | None:
    """None when ``audit:metric`` has a paired interval from per-row outcomes, else why not."""
    if audit == "accuracy" and metric in (CLASSIFICATION_ACCURACY if task == "classification" else GENERATION_ACCURACY):
        return None
    if audit == "fairness" and task == "classification" and metric in FAIRNESS:
        return None
    if audit == "fairness" and metric == "flagged_groups":
        return "a count of significance flags, not a per-row figure"
    if audit == "data":
        return "a property of the data, the same for every run on these rows"
    if audit == "core":
        return "core's verdict on the model (degenerate or not), not a per-row figure"
    return (f"not a function of the stored per-row outcomes: {audit} needs more than class predictions or answer "
            "scores (probabilities, perturbed inputs, probes or retrained models)")
