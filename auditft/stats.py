"""Classification metrics with seeded percentile-bootstrap 95% confidence intervals.

Resampling is vectorised (one index matrix, confusion counts via ``bincount``) so 1,000
resamples of a few thousand predictions take milliseconds. Deltas are paired: base and
adapter are scored on the same resampled rows, so the delta's CI reflects the pairing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

N_BOOT = 1000


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


def bootstrap_metrics(y_true: Any, y_pred: Any, k: int, *, base_pred: Any = None, seed: int = 0,
                      n_boot: int = N_BOOT) -> dict[str, dict[str, float | None]]:
    """Point value and 95% CI for accuracy and macro-F1 (and their paired deltas vs base)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(y_true)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = _boot_confusions(y_true, y_pred, k, idx)
    point = confusion(y_true, y_pred, k)
    out: dict[str, dict[str, float | None]] = {}
    base_boot = base_point = None
    if base_pred is not None:
        base_pred = np.asarray(base_pred, dtype=np.int64)
        base_boot = _boot_confusions(y_true, base_pred, k, idx)
        base_point = confusion(y_true, base_pred, k)
    for name, fn in METRICS.items():
        samples = fn(boot)
        value = float(fn(point))
        entry: dict[str, float | None] = {
            "value": value, "ci_low": _q(samples, 2.5), "ci_high": _q(samples, 97.5), "n": n,
            "base_value": None,
        }
        if base_boot is not None and base_point is not None:
            base_value = float(fn(base_point))
            entry["base_value"] = base_value
            diffs = samples - fn(base_boot)
            out[f"{name}_delta"] = {
                "value": value - base_value, "ci_low": _q(diffs, 2.5), "ci_high": _q(diffs, 97.5),
                "n": n, "base_value": None,
            }
        out[name] = entry
    return out


def _q(samples: np.ndarray, pct: float) -> float:
    return float(np.percentile(samples, pct))


def bootstrap_means(scores: dict[str, Any], base_scores: dict[str, Any] | None = None, *, seed: int = 0,
                    n_boot: int = N_BOOT) -> dict[str, dict[str, float | None]]:
    """Point value and 95% CI of the mean of per-example scores (e.g. exact match, token F1),
    one figure per name, plus ``<name>_delta`` against ``base_scores`` on the same resampled
    rows (paired). All score arrays must have the same length."""
    names = list(scores)
    n = len(scores[names[0]]) if names else 0
    out: dict[str, dict[str, float | None]] = {}
    if n == 0:
        return {name: {"value": float("nan"), "ci_low": None, "ci_high": None, "n": 0, "base_value": None}
                for name in names}
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    for name in names:
        values = np.asarray(scores[name], dtype=float)
        samples = values[idx].mean(axis=1)
        entry: dict[str, float | None] = {"value": float(values.mean()), "ci_low": _q(samples, 2.5),
                                          "ci_high": _q(samples, 97.5), "n": n, "base_value": None}
        if base_scores is not None and name in base_scores:
            base = np.asarray(base_scores[name], dtype=float)
            entry["base_value"] = float(base.mean())
            diffs = samples - base[idx].mean(axis=1)
            out[f"{name}_delta"] = {"value": float(values.mean() - base.mean()), "ci_low": _q(diffs, 2.5),
                                    "ci_high": _q(diffs, 97.5), "n": n, "base_value": None}
        out[name] = entry
    return out
