"""The calibration audit's metric table and its pure numpy figures.

Every figure is computed from per-row ``confidence`` (in [0, 1]), ``correct`` (0/1) and, for the
Brier score, a per-row score, on a matrix of row indices ``idx`` of shape (B, n): the point
estimate is ``idx = arange(n)[None]``, a bootstrap is B resampled rows. One code path for both
keeps the point value and its CI the same statistic.

Definitions (Guo et al. 2017, "On Calibration of Modern Neural Networks"; Naeini et al. 2015):

* ``ece``: equal-width bins over [0, 1] (row i in bin ``min(floor(conf_i * bins), bins - 1)``),
  ``sum_b (n_b / n) * |accuracy_b - mean confidence_b|``;
* ``ece_equal_mass``: the same sum over ``bins`` bins of (nearly) equal row counts: row i is in
  bin ``floor(r_i * bins / n)``, r_i the 0-based rank of its confidence (tied rows take the rank
  of the first of them, so ties share a bin and a bin can hold more than n / bins rows);
* ``mce``: the largest ``|accuracy_b - mean confidence_b|`` over non-empty equal-width bins;
* ``brier``: classification, ``mean_i sum_k (p_ik - onehot_ik)^2`` (NOT divided by the number
  of classes K: range [0, 2]); generation, the binary ``mean_i (conf_i - correct_i)^2``;
* ``overconfidence``: ``mean confidence - accuracy`` (positive: overconfident; negative:
  underconfident).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

Direction = Literal["higher", "lower"]

#: the headline figures, measured on the adapter and on the base model
FIGURES = ("ece", "ece_equal_mass", "mce", "brier", "overconfidence")

#: every gate metric the audit can produce; all of them are errors, so lower is better
METRIC_DIRECTIONS: dict[str, Direction] = {
    **{name: "lower" for name in FIGURES},
    **{f"{name}_delta": "lower" for name in FIGURES},
    "ece_max_group": "lower",
    "ece_max_group_delta": "lower",
    "ece_after_temperature": "lower",
}

#: what a model that does nothing satisfies: predicting the class prior for every row is
#: perfectly calibrated (its confidence IS its accuracy), so every calibration error is ~0
#: overall and in every group, and its overconfidence is ~0 (a ``max`` gate on a signed
#: overconfidence also passes any underconfident model); the temperature what-if inherits it.
#: Brier is not trivial: the prior's Brier is the label entropy-like 1 - sum_k prior_k^2.
TRIVIAL_METRICS = ("ece", "ece_equal_mass", "mce", "overconfidence", "ece_max_group", "ece_after_temperature",
                   "ece_delta", "ece_equal_mass_delta", "mce_delta", "overconfidence_delta", "ece_max_group_delta")

#: the audit's evidence floor (see docs: with 10 bins, fewer than 50 rows leaves ~5 rows a bin,
#: where sampling noise alone makes ECE look large and its CI is not informative)
MIN_N = 50

#: rows per bootstrap chunk x resamples held in memory at once (bounds memory on large tests)
_CHUNK_CELLS = 4_000_000


def confidence_correct(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the top class probability and whether the top class is the label (0/1)."""
    import numpy as np

    proba = np.asarray(proba, dtype=float)
    pred = proba.argmax(axis=1)
    return proba.max(axis=1), (pred == np.asarray(y)).astype(float)


def brier_rows(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row: ``sum_k (p_k - onehot_k)^2`` (multi-class Brier, not divided by K)."""
    import numpy as np

    proba = np.asarray(proba, dtype=float)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(proba)), np.asarray(y, dtype=np.int64)] = 1.0
    return ((proba - onehot) ** 2).sum(axis=1)


def width_bins(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each confidence: ``[0, 1/bins), ..., [1 - 1/bins, 1]``."""
    import numpy as np

    return np.minimum((np.clip(confidence, 0.0, 1.0) * bins).astype(np.int64), bins - 1)


def point_index(n: int) -> np.ndarray:
    """The identity "resample": the rows as they are, shape (1, n)."""
    import numpy as np

    return np.arange(n)[None, :]


def calibration_errors(confidence: np.ndarray, correct: np.ndarray, idx: np.ndarray,
                       bins: int) -> dict[str, np.ndarray]:
    """``ece``, ``ece_equal_mass`` and ``mce`` of each resample (row of ``idx``), shape (B,)."""
    import numpy as np

    out: dict[str, list[np.ndarray]] = {"ece": [], "ece_equal_mass": [], "mce": []}
    n = idx.shape[1]
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, idx.shape[0], step):
        chunk = idx[start:start + step]
        ece, mce = _width_errors(confidence, correct, chunk, bins)
        out["ece"].append(ece)
        out["mce"].append(mce)
        out["ece_equal_mass"].append(_mass_ece(confidence, correct, chunk, bins))
    return {k: np.concatenate(v) for k, v in out.items()}


def _width_errors(confidence: np.ndarray, correct: np.ndarray, idx: np.ndarray,
                  bins: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    b, n = idx.shape
    cells = (width_bins(confidence, bins)[idx] + bins * np.arange(b)[:, None]).ravel()
    gaps = np.bincount(cells, weights=(correct - confidence)[idx].ravel(), minlength=b * bins).reshape(b, bins)
    counts = np.bincount(cells, minlength=b * bins).reshape(b, bins)
    ece = np.abs(gaps).sum(axis=1) / n
    mce = (np.abs(gaps) / np.maximum(counts, 1)).max(axis=1)  # an empty bin has gap 0
    return ece, mce


def _mass_ece(confidence: np.ndarray, correct: np.ndarray, idx: np.ndarray, bins: int) -> np.ndarray:
    import numpy as np

    b, n = idx.shape
    conf = confidence[idx]
    order = np.argsort(conf, axis=1, kind="stable")
    ranked = np.take_along_axis(conf, order, axis=1)
    gaps = np.take_along_axis((correct - confidence)[idx], order, axis=1)
    # a row's bin is fixed by the rank of the first row with its confidence, so ties share a bin
    # (otherwise equal confidences would be split by row order)
    first = np.concatenate([np.ones((b, 1), dtype=bool), ranked[:, 1:] != ranked[:, :-1]], axis=1)
    start = np.maximum.accumulate(np.where(first, np.arange(n)[None, :], 0), axis=1)
    cells = (start * bins // n + bins * np.arange(b)[:, None]).ravel()
    sums = np.bincount(cells, weights=gaps.ravel(), minlength=b * bins).reshape(b, bins)
    return np.abs(sums).sum(axis=1) / n


def all_figures(confidence: np.ndarray, correct: np.ndarray, brier: np.ndarray, idx: np.ndarray,
                bins: int) -> dict[str, np.ndarray]:
    """Every headline figure (``FIGURES``) on each resample of ``idx``, shape (B,)."""
    out = calibration_errors(confidence, correct, idx, bins)
    out["brier"] = brier[idx].mean(axis=1)
    out["overconfidence"] = (confidence - correct)[idx].mean(axis=1)
    return {name: out[name] for name in FIGURES}


def bin_table(confidence: np.ndarray, correct: np.ndarray, bins: int) -> list[dict[str, float | int | None]]:
    """The reliability diagram's data: per equal-width bin, its range, row count, mean
    confidence and accuracy (None for an empty bin)."""
    import numpy as np

    which = width_bins(confidence, bins)
    rows: list[dict[str, float | int | None]] = []
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        rows.append({"low": b / bins, "high": (b + 1) / bins, "count": count,
                     "confidence": float(confidence[mask].mean()) if count else None,
                     "accuracy": float(correct[mask].mean()) if count else None})
    return rows


# -- temperature scaling -------------------------------------------------------------------------


def temperature_scale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the probabilities a temperature-scaled model gives (log p is the
    logit up to a per-row constant, which softmax ignores)."""
    import numpy as np

    logits = np.log(np.clip(np.asarray(proba, dtype=float), 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def nll(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float)[np.arange(len(y)), np.asarray(y, dtype=np.int64)], 1e-12, None)
    return float(-np.log(p).mean())


#: the fitted temperature is searched in [exp(-LOG_T_BOUND), exp(LOG_T_BOUND)] = [0.05, 20]
LOG_T_BOUND = 3.0


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """The single temperature minimising the NLL of ``y`` under ``temperature_scale(proba, T)``
    (bounded search over log T); returns (T, NLL before, NLL after)."""
    import numpy as np
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=np.int64)
    found = minimize_scalar(lambda log_t: nll(temperature_scale(proba, float(np.exp(log_t))), y),
                            bounds=(-LOG_T_BOUND, LOG_T_BOUND), method="bounded", options={"xatol": 1e-5})
    t = float(np.exp(found.x))
    return t, nll(proba, y), nll(temperature_scale(proba, t), y)
