"""The k-fold aggregates: t-intervals over the per-fold figures, the chi-square interval of
their spread, the Nadeau-Bengio corrected interval, and the gate metrics built from them."""

from __future__ import annotations

import math
from typing import Any

from auditft.records import Metric


def t_interval(values: list[float], *, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """Mean, sample std (ddof=1) and the 95% t-interval of the mean (df = n-1), optionally
    clipped to ``[lo, hi]`` (a mean accuracy cannot exceed 1)."""
    import numpy as np
    from scipy import stats

    arr = np.asarray(values, dtype=float)
    n = int(arr.size)
    mean = float(arr.mean()) if n else None
    if n < 2 or mean is None:
        return {"mean": mean, "std": None, "ci_low": None, "ci_high": None, "n": n}
    std = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if lo is not None:
        low = max(low, lo)
    if hi is not None:
        high = min(high, hi)
    return {"mean": mean, "std": std, "ci_low": low, "ci_high": high, "n": n}


def std_interval(values: list[float]) -> tuple[float | None, float | None]:
    """95% chi-square interval of a standard deviation (df = n-1)."""
    import numpy as np
    from scipy import stats

    n = len(values)
    if n < 2:
        return None, None
    var = float(np.var(np.asarray(values, dtype=float), ddof=1))
    df = n - 1
    return math.sqrt(df * var / float(stats.chi2.ppf(0.975, df))), math.sqrt(df * var / float(stats.chi2.ppf(0.025, df)))


def corrected_interval(values: list[float], k: int) -> tuple[float | None, float | None]:
    """Nadeau & Bengio (2003) corrected resampled t-interval of the mean: the variance is
    inflated by ``1/k + n_test/n_train`` (``1/(k-1)`` for k-fold) instead of ``1/k`` because the
    folds' training sets overlap."""
    import numpy as np
    from scipy import stats

    n = len(values)
    if n < 2:
        return None, None
    arr = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt((1 / n + 1 / (k - 1)) * float(arr.var(ddof=1)))
    return max(0.0, float(arr.mean()) - half), min(1.0, float(arr.mean()) + half)


def summarise(held: list[float], train: list[float], *, n_heldout: int, name: str,
              base_held: list[float] | None = None, base_train: list[float] | None = None,
              extra: dict[str, tuple[list[float], list[float] | None]] | None = None) -> dict[str, Metric]:
    """The gate metrics from per-fold figures: mean / std / min of the held-out figure
    ``name`` (``accuracy`` or ``token_f1``), the generalization gap ``mean(train) -
    mean(held-out)`` with the t-interval of the paired per-fold gaps, and the means of
    ``extra`` figures (``{metric_name: (adapter values, base values)}``)."""
    def mean(values: list[float] | None) -> float | None:
        return float(sum(values) / len(values)) if values else None

    def std(values: list[float] | None) -> float | None:
        return t_interval(values)["std"] if values and len(values) > 1 else None

    mean_ci = t_interval(held, lo=0.0, hi=1.0)
    std_low, std_high = std_interval(held)
    gaps = [t - h for t, h in zip(train, held)]
    gap_ci = t_interval(gaps, lo=-1.0, hi=1.0)
    base_gap = ([t - h for t, h in zip(base_train, base_held)]
                if base_held is not None and base_train is not None else None)
    metrics = {
        f"kfold_mean_{name}": Metric(mean_ci["mean"], mean_ci["ci_low"], mean_ci["ci_high"], n_heldout,
                                     mean(base_held)),
        f"kfold_std_{name}": Metric(mean_ci["std"], std_low, std_high, n_heldout, std(base_held)),
        f"kfold_min_{name}": Metric(min(held), None, None, n_heldout, min(base_held) if base_held else None),
        "generalization_gap": Metric(gap_ci["mean"], gap_ci["ci_low"], gap_ci["ci_high"], n_heldout, mean(base_gap)),
    }
    for metric_name, (values, base_values) in (extra or {}).items():
        ci = t_interval(values, lo=0.0, hi=1.0)
        metrics[metric_name] = Metric(ci["mean"], ci["ci_low"], ci["ci_high"], n_heldout, mean(base_values))
    return metrics


def expected_range_factor(n: int) -> float:
    """``d_n``: the expected range (max - min) of ``n`` independent standard normal draws,
    ``integral of 1 - Phi(x)^n - (1 - Phi(x))^n dx`` (1.128 for 2, 1.693 for 3, 2.326 for 5)."""
    from scipy import integrate, stats

    value, _ = integrate.quad(lambda x: 1 - stats.norm.cdf(x) ** n - stats.norm.sf(x) ** n, -12, 12, limit=200)
    return float(value)


def seed_spread(values: list[float], *, n_heldout: int, name: str) -> dict[str, Metric]:
    """The seed-stability metrics from the held-out figures of ``len(values)`` adapters that
    differ only in their seed (same training rows, same held-out rows).

    ``seed_std_<name>``: the sample std (ddof=1) with the chi-square interval (df = seeds-1), the
    same method as ``kfold_std_<name>``. ``seed_range_<name>``: max - min; its interval is the
    std interval times ``d_n`` (:func:`expected_range_factor`), i.e. a 95% interval of the range
    expected from that many seeds under normality. ``n`` is the number of held-out rows every
    seed was scored on (kfold's convention: rows, not models); there is no base figure (the
    frozen base model has no training seed)."""
    if len(values) < 2:
        raise ValueError(f"kfold: a seed spread needs at least 2 seeds, got {len(values)}")
    ci = t_interval(values)
    low, high = std_interval(values)
    factor = expected_range_factor(len(values))
    details = {"seeds": len(values), "interval": "chi-square on the std (df = seeds - 1)"}
    return {
        f"seed_std_{name}": Metric(ci["std"], low, high, n_heldout, None, details=details),
        f"seed_range_{name}": Metric(
            max(values) - min(values), None if low is None else low * factor,
            None if high is None else high * factor, n_heldout, None,
            details={"seeds": len(values), "interval": f"chi-square std interval x d_n = {factor:.4f} "
                                                       "(expected range of that many normal draws)"}),
    }
