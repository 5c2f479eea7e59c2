"""The ``kfold`` result from the fold records: gate metrics, aggregates, evidence and notes."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.kfold.folds import EARLY_STOPPING_FRACTION
from auditft.default_plugins.audits.kfold.seeds import seed_result
from auditft.default_plugins.audits.kfold.statistics import corrected_interval, summarise
from auditft.records import AuditResult

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.kfold.options import KFoldOptions
    from auditft.default_plugins.audits.kfold.scoring import BaseFigures
    from auditft.jobs import AuditJob

PROBE_NOTE = (
    "Base model figures come from a linear probe: logistic regression on the frozen base model's "
    "mean-pooled embeddings (computed once for all rows), fitted per fold on the same training rows "
    "and scored on the same held-out rows as the adapter."
)
GENERATION_BASE_NOTE = (
    "Base model figures are the base model's own answers (no training), scored on the same "
    "held-out rows as each fold's adapter."
)
INTERVAL_NOTE = (
    "95% CIs of means and of the generalization gap: t-interval over the k fold figures (df = k-1; "
    "the gap's interval is over the paired per-fold gaps), clipped to the metric's range. Folds share "
    "training rows, so these intervals are somewhat optimistic; evidence.aggregates also holds the "
    "Nadeau-Bengio corrected interval of the mean held-out figure. The CI of the standard deviation "
    "is the chi-square interval; the minimum over folds has no CI."
)


def kfold_result(job: AuditJob, options: KFoldOptions, rows: list[Example], available: list[Example],
                 folds: list[dict[str, Any]], base: BaseFigures | None, early_stopping: bool,
                 started: float, *, seed_runs: list[dict[str, Any]] | None = None) -> AuditResult:
    """Aggregate the per-fold records ``folds`` (``rows``: the folded rows, a subsample of
    ``available`` when ``max_rows`` cut it) into the audit's result; ``seed_runs`` (fold 1's
    split under several seeds) adds the seed-stability metrics and ``evidence.seeds``."""
    k = options.k
    classification = job.task == "classification"
    n_heldout = sum(f["n_heldout"] for f in folds)
    name = "accuracy" if classification else "token_f1"
    held = [f[f"heldout_{name}"] for f in folds]
    train = [f[f"train_{name}"] for f in folds]
    has_base = base is not None and all(f.get(f"base_heldout_{name}") is not None for f in folds)
    base_held = [f[f"base_heldout_{name}"] for f in folds] if has_base else None
    base_train = [f[f"base_train_{name}"] for f in folds] if has_base else None
    extra_name, extra_key = (("kfold_mean_macro_f1", "macro_f1") if classification
                             else ("kfold_mean_exact_match", "exact_match"))
    extra = {extra_name: ([f[f"heldout_{extra_key}"] for f in folds],
                          [f[f"base_heldout_{extra_key}"] for f in folds] if has_base else None)}
    metrics = summarise(held, train, n_heldout=n_heldout, name=name, base_held=base_held,
                        base_train=base_train, extra=extra)
    corrected = corrected_interval(held, k)
    aggregates = {metric: {**m.to_dict()} for metric, m in metrics.items()}
    aggregates[f"kfold_mean_{name}"]["nadeau_bengio_ci"] = list(corrected)
    subgroup = [f["subgroup_gap"]["value"] for f in folds if f.get("subgroup_gap")]
    seeds = seed_note = None
    if seed_runs:
        seed_metrics, seeds, seed_note = seed_result(seed_runs, name=name, fold_held=held,
                                                     n_train=folds[0]["n_train"], n_heldout=folds[0]["n_heldout"])
        metrics.update(seed_metrics)
    evidence = {
        "task": job.task,
        "k": k,
        "figure": name,
        "labels": list(job.data.labels),
        "group_columns": list(job.data.group_columns),
        "n_rows": len(rows),
        "n_rows_available": len(available),
        "max_rows": options.max_rows,
        "subsampled": len(rows) < len(available),
        "n_heldout": n_heldout,
        "seed": job.seed,
        "early_stopping_validation": early_stopping,
        "folds": folds,
        "aggregates": aggregates,
        "largest_subgroup_gap": max(subgroup) if subgroup else None,
        "base_method": (("linear probe (logistic regression on frozen mean-pooled base embeddings), "
                         "fitted per fold") if classification else "base model answers, no training")
                       if has_base else None,
        "train_seconds_total": round(sum(f["train_seconds"] for f in folds), 3),
    }
    if seeds is not None:
        evidence["seeds"] = seeds
    notes = _notes(k, len(rows), len(available), classification=classification, has_base=has_base,
                   early_stopping=early_stopping)
    return AuditResult(kind="kfold", metrics=metrics, evidence=_clean(evidence),
                       notes=notes + ([seed_note] if seed_note else []),
                       seconds=round(time.perf_counter() - started, 3))


def _notes(k: int, n_rows: int, n_available: int, *, classification: bool, has_base: bool,
           early_stopping: bool) -> list[str]:
    notes = [
        f"{k} fresh adapters trained with the suite's tuner, options and training settings, each on "
        f"{k - 1}/{k} of train+validation ({n_rows} rows) and scored on the remaining fold; the "
        "test split is not used.",
        INTERVAL_NOTE,
    ]
    if has_base:
        notes.append(PROBE_NOTE if classification else GENERATION_BASE_NOTE)
    else:
        notes.append("No base model figure: the session offers no base-model generation.")
    if n_rows < n_available:
        notes.append(f"max_rows: a seeded stratified subsample of {n_rows} of {n_available} rows was "
                     "folded; that bounds the cost but widens every interval (less precision).")
    if early_stopping:
        notes.append(f"Early stopping: {EARLY_STOPPING_FRACTION:.0%} of each fold's training rows were "
                     "carved off as its validation split.")
    if not classification:
        notes.append("Generation train scores read a seeded sample of each fold's training rows as "
                     "large as its held-out fold.")
    return notes


def _clean(value: object) -> Any:
    """JSON-safe evidence: numpy scalars to Python, NaN / inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = getattr(value, "item")()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
