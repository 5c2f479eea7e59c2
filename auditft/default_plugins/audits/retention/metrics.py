"""The ``retention`` audit's metrics as the registry and the report see them, and their
computation from per-probe correctness (pure: no model, unit-tested with hand-made vectors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft.records import Metric

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from auditft.registry import Direction

METRIC_DIRECTIONS: dict[str, Direction] = {
    "retained_accuracy": "higher",
    "retention_drop": "lower",
    "forgotten_rate": "lower",
    "retention_drop_max_category": "lower",
}
#: shares of probes (0/1 each): exact intervals, McNemar, the power check
PROPORTIONS = ("retained_accuracy", "forgotten_rate")
#: a degenerate adapter (constant answers, always abstaining) scores 0 on the probes, so it fails
#: every metric here rather than satisfying one; the case that IS trivial, a base model that knows
#: nothing (drop 0, nothing forgotten), is handled by the min_base_correct floor instead
TRIVIAL_METRICS: tuple[str, ...] = ()

#: the report's metric table, in order: (metric, what it measures)
COMPONENTS = [
    ("retained_accuracy", "adapter accuracy on held-out general probes (base beside it)"),
    ("retention_drop", "base accuracy minus adapter accuracy, paired on the same probes"),
    ("forgotten_rate", "of the probes the base answers correctly, share the adapter now gets wrong"),
    ("retention_drop_max_category", "the largest per-category drop"),
]


def retention_metrics(adapter: Sequence[float], base: Sequence[float], categories: Sequence[str], *, seed: int,
                      n_boot: int = 1000, min_base_correct: int = 20) -> dict[str, Metric]:
    """Metrics from per-probe correctness (1.0 correct, 0.0 wrong) of the adapter and the base.

    ``retention_drop`` = base accuracy - adapter accuracy with the paired percentile bootstrap
    (both models on the same resampled probes) and the exact McNemar test; its ``n`` is the
    number of probes the base answers correctly (the knowledge that could be lost), and
    ``min_n`` is ``min_base_correct``, so a base that knows (almost) nothing makes the check
    ``insufficient``, never a pass. ``forgotten_rate``: among those probes, the share the
    adapter gets wrong (exact interval; [0, 1] when there are none)."""
    import numpy as np

    from auditft.stats import bootstrap_means, proportion_ci

    a = np.asarray(adapter, dtype=float)
    b = np.asarray(base, dtype=float)
    figures = bootstrap_means({"retained_accuracy": a}, {"retained_accuracy": b}, seed=seed, n_boot=n_boot,
                              proportions=PROPORTIONS)
    known = int(b.sum())
    delta = figures["retained_accuracy_delta"]
    metrics = {"retained_accuracy": Metric.from_figure(figures["retained_accuracy"]),
               "retention_drop": Metric(value=0.0 - delta["value"] + 0.0, ci_low=0.0 - delta["ci_high"] + 0.0,
                                        ci_high=0.0 - delta["ci_low"] + 0.0,
                                        n=known, min_n=min_base_correct,
                                        details={**delta["details"], "probes": len(a), "base_correct": known})}
    forgotten = int(np.sum((b == 1) & (a == 0)))
    low, high = proportion_ci(forgotten, known) if known else (0.0, 1.0)
    metrics["forgotten_rate"] = Metric(value=forgotten / known if known else 0.0, ci_low=low, ci_high=high, n=known,
                                       min_n=min_base_correct,
                                       details={"interval": "clopper-pearson", "forgotten": forgotten})
    groups = sorted(set(categories))
    if len(groups) > 1:
        metrics["retention_drop_max_category"] = _max_category_drop(a, b, np.asarray(categories), groups, seed=seed,
                                                                     n_boot=n_boot, min_base_correct=min_base_correct)
    return metrics


def _max_category_drop(a: np.ndarray, b: np.ndarray, cats: np.ndarray, groups: list[str], *, seed: int, n_boot: int,
                       min_base_correct: int) -> Metric:
    """The largest per-category drop, with a stratified paired bootstrap (each category
    resampled within itself, both models on the same probes). The percentile interval of a
    maximum sits above the point value when categories tie, so it is widened to contain it.
    ``n`` is the smallest number of base-correct probes in a category."""
    import numpy as np

    rng = np.random.default_rng(seed)
    drops, boots, known = [], [], []
    for g in groups:
        rows = np.flatnonzero(cats == g)
        idx = rows[rng.integers(0, len(rows), size=(n_boot, len(rows)))]
        drops.append(float(b[rows].mean() - a[rows].mean()))
        boots.append(b[idx].mean(axis=1) - a[idx].mean(axis=1))
        known.append(int(b[rows].sum()))
    worst = int(np.argmax(drops))
    samples = np.max(np.stack(boots), axis=0)
    value = drops[worst]
    low = min(float(np.percentile(samples, 2.5)), value)
    high = max(float(np.percentile(samples, 97.5)), value)
    return Metric(value=value, ci_low=low, ci_high=high, n=min(known), min_n=min_base_correct,
                  details={"interval": "stratified paired percentile bootstrap", "category": groups[worst],
                           "per_category": dict(zip(groups, drops))})


def per_category(adapter: Sequence[float], base: Sequence[float], categories: Sequence[str]) -> list[dict[str, Any]]:
    """One row per category: probes, base and adapter accuracy, drop, probes forgotten."""
    rows = []
    for g in sorted(set(categories)):
        idx = [i for i, c in enumerate(categories) if c == g]
        acc_a = sum(adapter[i] for i in idx) / len(idx)
        acc_b = sum(base[i] for i in idx) / len(idx)
        rows.append({"category": g, "n": len(idx), "adapter_accuracy": acc_a, "base_accuracy": acc_b,
                     "drop": acc_b - acc_a, "base_correct": int(sum(base[i] for i in idx)),
                     "forgotten": sum(1 for i in idx if base[i] == 1 and adapter[i] == 0)})
    return rows


def summary(metrics: dict[str, Metric], n: int) -> str:
    """The headline sentence for the model card."""
    acc, drop, gone = metrics["retained_accuracy"], metrics["retention_drop"], metrics["forgotten_rate"]
    text = (f"Retained accuracy {acc.value:.3f} [{acc.ci_low:.3f}, {acc.ci_high:.3f}] on {n} held-out probes "
            f"(base {acc.base_value:.3f}); drop {drop.value:+.3f} [{drop.ci_low:+.3f}, {drop.ci_high:+.3f}]; "
            f"{gone.details['forgotten'] if gone.details else 0} of the {gone.n} probes the base answered "
            f"correctly are now wrong")
    if gone.n is not None and drop.min_n is not None and gone.n < drop.min_n:
        text += f" (too few base-correct probes for evidence: fewer than {drop.min_n})"
    return text + "."
