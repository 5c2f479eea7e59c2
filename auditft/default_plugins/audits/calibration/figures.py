"""From per-row scores to gate metrics: the headline figures with seeded percentile-bootstrap
CIs over test rows, the base model's figures on the same resampled rows (paired deltas), and
the worst per-group ECE. Imported when the audit runs (numpy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from auditft.default_plugins.audits.calibration.metrics import (
    FIGURES,
    all_figures,
    calibration_errors,
    point_index,
)
from auditft.records import Metric
from auditft.records import finite_or_none as _num

BOOTSTRAP = "percentile bootstrap"


@dataclass(frozen=True)
class Scored:
    """One model's per-row confidence, correctness (0/1) and Brier score on the test rows."""

    confidence: np.ndarray
    correct: np.ndarray
    brier: np.ndarray

    @property
    def n(self) -> int:
        return len(self.confidence)


def interval(samples: np.ndarray, value: float) -> tuple[float, float, bool]:
    """The 95% percentile interval of ``samples``, widened to contain ``value`` when needed
    (binned calibration errors are biased upwards under resampling, so on a well calibrated
    model the whole bootstrap distribution can lie above the point estimate; the upper end,
    which a ``max`` gate judges, is never moved). The flag says whether it was widened."""
    low, high = float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))
    widened = value < low or value > high
    return min(low, value), max(high, value), widened


def to_metric(value: float, samples: np.ndarray, *, n: int, method: str, base: float | None = None,
              min_n: int | None = None) -> Metric:
    low, high, widened = interval(samples, value)
    details: dict[str, Any] = {"interval": method}
    if widened:
        details["widened_to_value"] = True
    return Metric(value=float(value), ci_low=_num(low), ci_high=_num(high), n=n, base_value=_num(base),
                  min_n=min_n, details=details)


def headline(adapter: Scored, base: Scored | None, *, bins: int, n_boot: int, seed: int) -> dict[str, Metric]:
    """``FIGURES`` for the adapter (base figure as ``base_value``) and ``<name>_delta``
    (adapter minus base) with paired CIs: both models on the same resampled rows."""
    n = adapter.n
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    point = all_figures(adapter.confidence, adapter.correct, adapter.brier, point_index(n), bins)
    boot = all_figures(adapter.confidence, adapter.correct, adapter.brier, idx, bins)
    base_point = base_boot = None
    if base is not None:
        base_point = all_figures(base.confidence, base.correct, base.brier, point_index(n), bins)
        base_boot = all_figures(base.confidence, base.correct, base.brier, idx, bins)
    out: dict[str, Metric] = {}
    for name in FIGURES:
        value = float(point[name][0])
        base_value = float(base_point[name][0]) if base_point is not None else None
        out[name] = to_metric(value, boot[name], n=n, method=BOOTSTRAP, base=base_value)
        if base_point is not None and base_boot is not None and base_value is not None:
            out[f"{name}_delta"] = to_metric(value - base_value, boot[name] - base_boot[name], n=n,
                                             method=f"paired {BOOTSTRAP}")
    return out


def group_rows(groups: list[dict[str, str]], columns: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """(column, value, row indices) for every value of every group column, in a stable order."""
    out = []
    for column in columns:
        values = [str(g.get(column, "")) for g in groups]
        for value in sorted(set(values)):
            out.append((column, value, np.flatnonzero(np.asarray(values) == value)))
    return out


def per_group(adapter: Scored, base: Scored | None, groups: list[dict[str, str]], columns: list[str], *,
              bins: int, n_boot: int, seed: int,
              min_group_size: int) -> tuple[dict[str, Metric], list[dict[str, Any]]]:
    """``ece_max_group`` (the worst group's ECE over every value of every group column) with a
    stratified bootstrap CI (each group resampled within itself, the maximum taken per resample;
    the base model on the same resampled rows), and the per-group evidence table.

    Every group counts, small ones too: ``n`` is the smallest group's size and ``min_n`` is
    ``min_group_size``, so a small group keeps the check from passing (``insufficient``)."""
    found = [(c, v, rows) for c, v, rows in group_rows(groups, columns) if len(rows)]
    if not found:
        return {}, []
    rng = np.random.default_rng([seed, 1])
    table: list[dict[str, Any]] = []
    boots, base_boots = [], []
    for column, value, rows in found:
        idx = rows[rng.integers(0, len(rows), size=(n_boot, len(rows)))]
        ece = float(calibration_errors(adapter.confidence, adapter.correct, rows[None, :], bins)["ece"][0])
        samples = calibration_errors(adapter.confidence, adapter.correct, idx, bins)["ece"]
        boots.append(samples)
        low, high, _ = interval(samples, ece)
        entry: dict[str, Any] = {"column": column, "value": value, "count": int(len(rows)), "ece": ece,
                                 "ci": [low, high], "accuracy": float(adapter.correct[rows].mean()),
                                 "confidence": float(adapter.confidence[rows].mean()),
                                 "small": len(rows) < min_group_size, "base_ece": None}
        if base is not None:
            entry["base_ece"] = float(calibration_errors(base.confidence, base.correct, rows[None, :], bins)["ece"][0])
            base_boots.append(calibration_errors(base.confidence, base.correct, idx, bins)["ece"])
        table.append(entry)
    worst = max(range(len(table)), key=lambda i: (table[i]["ece"], -i))
    table[worst]["worst"] = True
    smallest = min(e["count"] for e in table)
    value = table[worst]["ece"]
    samples = np.max(np.vstack(boots), axis=0)
    base_value = max(e["base_ece"] for e in table) if base is not None else None
    method = f"stratified {BOOTSTRAP} (groups resampled within themselves), maximum over groups"
    metrics = {"ece_max_group": to_metric(value, samples, n=smallest, method=method, base=base_value,
                                          min_n=min_group_size)}
    if base is not None and base_value is not None:
        metrics["ece_max_group_delta"] = to_metric(value - base_value, samples - np.max(np.vstack(base_boots), axis=0),
                                                   n=smallest, method=f"paired {method}", min_n=min_group_size)
    return metrics, table
