"""Metrics with seeded 95% confidence intervals: the statistics the gate leans on.

* **Proportions** (accuracy, exact match, hallucination rates, ...) over fewer than
  ``EXACT_BELOW`` (300) independent items get the exact Clopper-Pearson interval
  (``proportion_ci``; scipy's ``binomtest``), which keeps its 95% coverage at small n where the
  percentile bootstrap is too narrow (100/100 correct gives 0.964-1.000, not 1.000-1.000).
  From 300 items on, and for figures that are not shares (macro-F1, token F1, deltas), the
  seeded percentile bootstrap.
* **Deltas** against another model on the same rows: paired percentile bootstrap (both models
  scored on the same resampled rows), and for proportions the two-sided exact McNemar test on
  the discordant pairs (``mcnemar_exact``; its p-value goes in the metric's ``details``).
* **Correlated rows** (``data.cluster_column``: several rows per patient, per document):
  ``clusters`` makes the bootstrap resample whole clusters (multinomial cluster weights), and
  the exact interval, which assumes independent rows, is not used.

Resampling is vectorised (one index matrix, confusion counts via ``bincount``; for clusters,
per-cluster counts times a weight matrix) so 1,000 resamples of a few thousand predictions take
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

N_BOOT = 1000
#: proportions over fewer independent items than this get the exact (Clopper-Pearson) interval
EXACT_BELOW = 300
#: interval methods, as named in a metric's ``details["interval"]``
EXACT, BOOTSTRAP, CLUSTER_BOOTSTRAP = "clopper-pearson", "percentile bootstrap", "cluster bootstrap"


def proportion_ci(successes: int, n: int, method: str = "exact") -> tuple[float, float]:
    """95% interval of ``successes / n``: ``"exact"`` (Clopper-Pearson) or ``"wilson"`` (score)."""
    from scipy.stats import binomtest

    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=0.95, method=method)
    return float(ci.low), float(ci.high)


def mcnemar_exact(correct: ArrayLike, other_correct: ArrayLike) -> dict[str, Any]:
    """Two-sided exact McNemar test that two models scored on the same rows are equally often
    right: a binomial test at 1/2 of the discordant pairs (p = 1 when there are none)."""
    from scipy.stats import binomtest

    a = np.asarray(correct, dtype=bool)
    b = np.asarray(other_correct, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"test": "McNemar exact (two-sided)", "p_value": p, "only_this_correct": only_a,
            "only_other_correct": only_b}


def cluster_ids(clusters: ArrayLike) -> tuple[np.ndarray, int]:
    """Cluster labels (any hashable values, one per row) -> dense ids 0..G-1 and G."""
    _, ids = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return ids.astype(np.int64), int(ids.max()) + 1 if len(ids) else 0


def cluster_weights(n_clusters: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(B, G) how often each cluster is drawn in each resample (G clusters drawn with replacement)."""
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)


def _exact_applies(n: int, clusters: ArrayLike | None, exact_below: int) -> bool:
    return clusters is None and 0 < n < exact_below


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def _boot_confusions(y_true: np.ndarray, y_pred: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """(B, k, k) confusion matrices, one per resample row of ``idx``."""
    b = idx.shape[0]
    flat = y_true[idx] * k + y_pred[idx] + (np.arange(b)[:, None] * k * k)
    return np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k)


def accuracy_from(cm: np.ndarray) -> np.ndarray:
    total = cm.sum(axis=(-2, -1))
    return np.trace(cm, axis1=-2, axis2=-1) / np.maximum(total, 1)


def macro_f1_from(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 over the classes present in truth or predictions (sklearn's convention
    with ``zero_division=0`` over the given label set)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    predicted = cm.sum(axis=-2).astype(float)
    actual = cm.sum(axis=-1).astype(float)
    denom = predicted + actual
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)
    return f1.mean(axis=-1)


METRICS = {"accuracy": accuracy_from, "macro_f1": macro_f1_from}


def bootstrap_metrics(y_true: ArrayLike, y_pred: ArrayLike, k: int, *, base_pred: ArrayLike | None = None, seed: int = 0,
                      n_boot: int = N_BOOT, clusters: ArrayLike | None = None,
                      exact_below: int = EXACT_BELOW) -> dict[str, dict[str, Any]]:
    """Point value and 95% CI for accuracy and macro-F1 (and their paired deltas vs base).

    Accuracy over fewer than ``exact_below`` rows gets the Clopper-Pearson interval; with
    ``clusters`` (one label per row) every interval is a cluster bootstrap. ``accuracy_delta``
    carries the exact McNemar test in ``details``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(y_true)
    rng = np.random.default_rng(seed)
    if clusters is None:
        idx = rng.integers(0, n, size=(n_boot, n))
        resample = lambda pred: _boot_confusions(y_true, pred, k, idx)  # noqa: E731
        method = BOOTSTRAP
    else:
        ids, groups = cluster_ids(clusters)
        weights = cluster_weights(groups, n_boot, rng)
        resample = lambda pred: _cluster_confusions(y_true, pred, k, ids, groups, weights)  # noqa: E731
        method = CLUSTER_BOOTSTRAP
    boot = resample(y_pred)
    point = confusion(y_true, y_pred, k)
    out: dict[str, dict[str, Any]] = {}
    base_boot = base_point = None
    if base_pred is not None:
        base_pred = np.asarray(base_pred, dtype=np.int64)
        base_boot = resample(base_pred)
        base_point = confusion(y_true, base_pred, k)
    for name, fn in METRICS.items():
        samples = fn(boot)
        value = float(fn(point))
        low, high = _q(samples, 2.5), _q(samples, 97.5)
        interval = method
        if name == "accuracy" and _exact_applies(n, clusters, exact_below):
            low, high = proportion_ci(int(np.trace(point)), n)
            interval = EXACT
        entry: dict[str, Any] = {"value": value, "ci_low": low, "ci_high": high, "n": n, "base_value": None,
                                 "details": {"interval": interval}}
        if base_boot is not None and base_point is not None:
            base_value = float(fn(base_point))
            entry["base_value"] = base_value
            diffs = samples - fn(base_boot)
            details: dict[str, Any] = {"interval": f"paired {method}"}
            if name == "accuracy" and clusters is None:  # McNemar assumes independent rows
                details["mcnemar"] = mcnemar_exact(y_pred == y_true, base_pred == y_true)
            out[f"{name}_delta"] = {
                "value": value - base_value, "ci_low": _q(diffs, 2.5), "ci_high": _q(diffs, 97.5),
                "n": n, "base_value": None, "details": details,
            }
        out[name] = entry
    return out


def _cluster_confusions(y_true: np.ndarray, y_pred: np.ndarray, k: int, ids: np.ndarray, groups: int,
                        weights: np.ndarray) -> np.ndarray:
    """(B, k, k) confusion matrices of cluster resamples: per-cluster counts weighted by how
    often each resample drew the cluster."""
    per_cluster = np.bincount(ids * k * k + y_true * k + y_pred, minlength=groups * k * k).reshape(groups, k * k)
    return (weights @ per_cluster).reshape(-1, k, k)


def _q(samples: np.ndarray, pct: float) -> float:
    return float(np.percentile(samples, pct))


def bootstrap_means(scores: dict[str, Any], base_scores: dict[str, Any] | None = None, *, seed: int = 0,
                    n_boot: int = N_BOOT, proportions: ArrayLike = (), clusters: ArrayLike | None = None,
                    exact_below: int = EXACT_BELOW) -> dict[str, dict[str, Any]]:
    """Point value and 95% CI of the mean of per-example scores (e.g. exact match, token F1),
    one figure per name, plus ``<name>_delta`` against ``base_scores`` on the same resampled
    rows (paired). All score arrays must have the same length.

    Names in ``proportions`` are shares of 0/1 scores: below ``exact_below`` items (and without
    clusters) their interval is Clopper-Pearson, and their delta carries the exact McNemar test
    in ``details``. ``clusters`` (one label per item) resamples whole clusters."""
    names = list(scores)
    n = len(scores[names[0]]) if names else 0
    out: dict[str, dict[str, Any]] = {}
    if n == 0:
        return {name: {"value": float("nan"), "ci_low": None, "ci_high": None, "n": 0, "base_value": None}
                for name in names}
    rng = np.random.default_rng(seed)
    if clusters is None:
        idx = rng.integers(0, n, size=(n_boot, n))
        resample = lambda values: values[idx].mean(axis=1)  # noqa: E731
        method = BOOTSTRAP
    else:
        ids, groups = cluster_ids(clusters)
        weights = cluster_weights(groups, n_boot, rng)
        sizes = weights @ np.bincount(ids, minlength=groups)
        resample = lambda values: (weights @ np.bincount(ids, weights=values, minlength=groups)) / sizes  # noqa: E731
        method = CLUSTER_BOOTSTRAP
    for name in names:
        values = np.asarray(scores[name], dtype=float)
        samples = resample(values)
        low, high = _q(samples, 2.5), _q(samples, 97.5)
        share = name in proportions
        if share and not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"{name}: a proportion needs 0/1 scores")
        interval = method
        if share and _exact_applies(n, clusters, exact_below):
            low, high = proportion_ci(int(values.sum()), n)
            interval = EXACT
        entry: dict[str, Any] = {"value": float(values.mean()), "ci_low": low, "ci_high": high, "n": n,
                                 "base_value": None, "details": {"interval": interval}}
        if base_scores is not None and name in base_scores:
            base = np.asarray(base_scores[name], dtype=float)
            entry["base_value"] = float(base.mean())
            diffs = samples - resample(base)
            details: dict[str, Any] = {"interval": f"paired {method}"}
            if share and clusters is None:  # McNemar assumes independent items
                details["mcnemar"] = mcnemar_exact(values == 1.0, base == 1.0)
            out[f"{name}_delta"] = {"value": float(values.mean() - base.mean()), "ci_low": _q(diffs, 2.5),
                                    "ci_high": _q(diffs, 97.5), "n": n, "base_value": None, "details": details}
        out[name] = entry
    return out


# -- multiple testing -------------------------------------------------------------------


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (controls the family-wise error rate)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(x) for x in adjusted]


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (controls the false discovery rate)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(x) for x in adjusted]
