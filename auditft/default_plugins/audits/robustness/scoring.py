"""Statistics of the ``robustness`` audit: per-family figures with CIs (``auditft.stats``), the
pooled and worst-family headlines, and identity-swap flips per group; also what both task halves
share (``Perturbed`` rows, row keys, clusters, the model-card sentence). numpy only; imported when
the audit runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from auditft.records import Metric
from auditft.stats import bootstrap_means, proportion_ci

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.jobs import AuditJob

#: a figure with no perturbed rows: value 0, the widest interval, n 0 (the gate reads insufficient)
_EMPTY_CI = {"accuracy_drop": (-1.0, 1.0)}


def empty_metrics(names: Sequence[str], family: str) -> dict[str, Metric]:
    """The family's figures when no test row can be perturbed by it."""
    out = {}
    for name in names:
        low, high = _EMPTY_CI.get(name, (0.0, 1.0))
        out[f"{name}_{family}"] = Metric(value=0.0, ci_low=low, ci_high=high, n=0,
                                         details={"interval": "no perturbed rows"})
        out[f"{name}_{family}_delta"] = Metric(value=0.0, ci_low=-1.0, ci_high=1.0, n=0,
                                               details={"interval": "no perturbed rows"})
    return out


def family_metrics(scores: dict[str, np.ndarray], base: dict[str, np.ndarray], family: str, *, seed: int,
                   n_boot: int, proportions: Sequence[str], clusters: Sequence[str] | None) -> dict[str, Metric]:
    """``<name>_<family>`` and its paired ``_delta`` for each per-row score (adapter vs base on
    the same rows): exact intervals for shares below 300 rows, percentile bootstrap otherwise."""
    named = {f"{k}_{family}": v for k, v in scores.items()}
    named_base = {f"{k}_{family}": v for k, v in base.items()}
    figures = bootstrap_means(named, named_base, seed=seed, n_boot=n_boot, clusters=clusters,
                              proportions=tuple(f"{k}_{family}" for k in proportions))
    return {name: Metric.from_figure(fig) for name, fig in figures.items()}


def pooled_metric(values: dict[str, list[np.ndarray]], keys: list[str], name: str, *, seed: int,
                  n_boot: int) -> dict[str, Metric]:
    """``name`` (and its delta) over every family's perturbed rows together: a row perturbed by
    two families counts twice, so the bootstrap resamples test rows (``keys``) as clusters."""
    joined = {which: np.concatenate(parts) if parts else np.zeros(0) for which, parts in values.items()}
    if not len(joined["adapter"]):
        return {}
    figures = bootstrap_means({name: joined["adapter"]}, {name: joined["base"]}, seed=seed, n_boot=n_boot,
                              clusters=keys)
    return {k: Metric.from_figure(fig) for k, fig in figures.items()}


def worst_metric(metrics: dict[str, Metric], families: Sequence[str], prefix: str, *, higher_worse: bool,
                 min_n: int) -> tuple[str, Metric] | None:
    """The worst family's figure (``prefix_<family>``) among families with at least ``min_n``
    rows (all families with rows when none has as many), tagged with the family."""
    have = [(f, metrics[f"{prefix}_{f}"]) for f in families if (metrics[f"{prefix}_{f}"].n or 0) > 0]
    pool = [(f, m) for f, m in have if (m.n or 0) >= min_n] or have
    if not pool:
        return None
    family, m = (max if higher_worse else min)(pool, key=lambda fm: fm[1].value)
    return family, Metric(value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n, base_value=m.base_value,
                          details={**(m.details or {}), "family": family})


def group_flips(groups: list[dict[str, str]], flips: np.ndarray, base_flips: np.ndarray,
                columns: Sequence[str], min_group_size: int) -> tuple[list[dict[str, Any]], Metric]:
    """Identity-swap flip rate per value of each group column (the original row's group), and
    the group whose predictions flip most among groups of at least ``min_group_size`` rows (the
    largest when none is that big: its ``min_n`` then makes the check insufficient)."""
    rows: list[dict[str, Any]] = []
    for column in columns:
        values = sorted({g[column] for g in groups if g.get(column) is not None})
        for value in values:
            mask = np.array([g.get(column) == value for g in groups], dtype=bool)
            n, k = int(mask.sum()), int(flips[mask].sum())
            low, high = proportion_ci(k, n)
            rows.append({"column": column, "value": value, "n": n, "flips": k, "flip_rate": k / n,
                         "ci": [low, high], "base_flip_rate": float(base_flips[mask].mean()),
                         "small": n < min_group_size})
    if not rows:
        return rows, Metric(value=0.0, ci_low=0.0, ci_high=1.0, n=0, min_n=min_group_size,
                            details={"interval": "no identity-swapped rows with a group"})
    eligible = [r for r in rows if not r["small"]]
    worst = max(eligible, key=lambda r: (r["flip_rate"], r["n"])) if eligible else max(rows, key=lambda r: r["n"])
    for r in rows:
        r["worst"] = r is worst
    return rows, Metric(value=worst["flip_rate"], ci_low=worst["ci"][0], ci_high=worst["ci"][1], n=worst["n"],
                        base_value=worst["base_flip_rate"], min_n=min_group_size,
                        details={"interval": "clopper-pearson", "group": f"{worst['column']}={worst['value']}"})


def stratified_sample(keys: Sequence[Any], cap: int, seed: int) -> list[int]:
    """Indices of at most ``cap`` rows, each stratum (``keys``: a label per row) in proportion
    (largest remainder), seeded; in the original order."""
    n = len(keys)
    if n <= cap:
        return list(range(n))
    rng = np.random.default_rng(seed)
    strata: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        strata.setdefault(key, []).append(i)
    exact = {k: cap * len(v) / n for k, v in strata.items()}
    quota = {k: int(q) for k, q in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - quota[k]), str(k)))[:cap - sum(quota.values())]:
        quota[k] += 1
    chosen = [int(i) for k, v in strata.items() for i in rng.choice(v, size=quota[k], replace=False)]
    return sorted(chosen)


@dataclass
class Perturbed:
    """One family's perturbed rows: positions in the sample, texts, swap-back maps (identity)."""

    family: str
    positions: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    mappings: list[dict[str, str]] = field(default_factory=list)


def row_key(ex: Example) -> str:
    return f"{ex.source}:{ex.row}"


def clusters_of(job: AuditJob, examples: list[Example]) -> list[str] | None:
    """Each row's ``data.cluster_column`` value, or None when the suite names no clusters."""
    if not getattr(job.suite.data, "cluster_column", None):
        return None
    return [str(ex.cluster) for ex in examples]


def summary(metrics: dict[str, Metric], worst: tuple[str, Metric] | None, what: str, n: int) -> str:
    """One sentence for the model card: the pooled figure, the worst family, the identity groups."""
    name = "flip_rate" if what == "flip rate" else "consistency"
    pooled = metrics.get(name)
    if pooled is None:
        return f"No test row could be perturbed ({n} rows tried)."

    def fig(m: Metric) -> str:
        ci = f" [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m.ci_low is not None and m.ci_high is not None else ""
        base = f" (base {m.base_value:.2f})" if m.base_value is not None else ""
        return f"{m.value:.3f}{ci}{base}"

    text = f"{what.capitalize()} under perturbation {fig(pooled)} over {pooled.n} perturbed copies of {n} test rows"
    if worst is not None:
        text += f"; worst family {worst[0]} at {fig(worst[1])}, n={worst[1].n}"
    group = metrics.get("identity_flip_rate_max_group")
    if group is not None and group.n:
        text += f"; identity swaps flip most for {(group.details or {}).get('group')} ({group.value:.3f}, n={group.n})"
    return text + "."
