"""Audit ``kfold``: does the fine-tune generalise, or did it get lucky with one split?

The rows the adapter may learn from (train + validation; the test split is never touched) are
cut into ``k`` folds: stratified by label for classification (``StratifiedKFold``), plain
``KFold`` for generation, both shuffled with the suite's seed. For each fold a FRESH adapter is
trained with the suite's own tuner, tuner options and training settings on the other ``k - 1``
folds and scored on the held-out fold (and on its own training rows, for the generalisation
gap). The spread of the held-out scores says how much the run's single figure could move by
luck of the split; a large train-minus-held-out gap says the tuner memorises.

Cost: ``k`` extra trainings. ``max_rows`` bounds it with a seeded stratified subsample of
train + validation before folding; that trades precision (fewer held-out rows, wider
intervals) for time.

The base model's figure, so every aggregate has a delta: for classification a linear probe
(logistic regression) on the frozen base model's mean-pooled embeddings, fitted per fold on
the same training rows and scored on the same held-out rows as the adapter (embeddings are
computed once for all rows). For generation, the base model's own answers (no training), cut
along the same folds.
"""

from __future__ import annotations

import gc
import math
import shutil
import time
from dataclasses import replace
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditft import distributed, hookimpl
from auditft.records import AuditResult, Metric, ReportSection, is_finite

if TYPE_CHECKING:
    import numpy as np

    from auditft.data import Example
    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry

#: groups with fewer held-out examples than this are left out of a fold's subgroup gap
MIN_GROUP = 5
#: share of a fold's training rows carved off as validation when the suite uses early stopping
EARLY_STOPPING_FRACTION = 0.1

CLASSIFICATION_METRICS = {
    "kfold_mean_accuracy": "higher",
    "kfold_std_accuracy": "lower",
    "kfold_min_accuracy": "higher",
    "kfold_mean_macro_f1": "higher",
    "generalization_gap": "lower",
}
GENERATION_METRICS = {
    "kfold_mean_token_f1": "higher",
    "kfold_std_token_f1": "lower",
    "kfold_min_token_f1": "higher",
    "kfold_mean_exact_match": "higher",
    "generalization_gap": "lower",
}

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


class KFoldOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: number of folds (= number of extra trainings)
    k: int = Field(default=5, ge=2, le=50)
    #: seeded stratified subsample of train + validation before folding (None: all rows).
    #: Bounds the cost on CPU at the price of precision (fewer held-out rows, wider CIs).
    max_rows: int | None = Field(default=None, ge=4)
    #: classification: score a fold's training accuracy on all its training rows ("all"), or on
    #: a seeded sample as large as its held-out part ("sample": about a fifth faster, but a
    #: noisier generalisation gap, which matters with few folds; benchmark P4)
    train_accuracy_rows: Literal["all", "sample"] = "all"


# -- pure helpers: folds and aggregation (unit-tested without a model) ---------------------


def fold_indices(n: int, k: int, seed: int, labels: list[int] | None = None) -> list[tuple[list[int], list[int]]]:
    """``k`` (train, held-out) index lists over ``range(n)``: stratified by ``labels`` when
    given (classification), plain shuffled ``KFold`` otherwise. Every index is held out once."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    if n < 2 * k:
        raise ValueError(f"kfold: {n} rows are too few for k={k} folds (need at least {2 * k}); lower k")
    x = np.zeros((n, 1))
    if labels is not None:
        counts: dict[int, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        rarest = min(sorted(counts), key=lambda label: counts[label])
        if counts[rarest] < k:
            raise ValueError(
                f"kfold: class {rarest} has only {counts[rarest]} rows in train+validation; k={k} "
                f"stratified folds need at least {k} per class (lower k, or raise max_rows)")
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, np.asarray(labels))
    else:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(x)
    return [(sorted(int(i) for i in tr), sorted(int(i) for i in te)) for tr, te in splits]


def subsample(n: int, max_rows: int | None, seed: int, labels: list[int] | None = None) -> list[int]:
    """Indices of a seeded (stratified when ``labels`` are given) subsample of ``max_rows`` of
    ``range(n)``; all indices when ``max_rows`` is None or not smaller than ``n``."""
    if max_rows is None or max_rows >= n:
        return list(range(n))
    from sklearn.model_selection import train_test_split

    stratify = labels
    if labels is not None:
        counts: dict[int, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        if min(counts.values()) < 2 or max_rows < len(counts):
            stratify = None
    keep, _ = train_test_split(list(range(n)), train_size=max_rows, random_state=seed, stratify=stratify)
    return sorted(int(i) for i in keep)


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


def subgroup_gap(examples: list[Example], scores: list[float], group_columns: list[str]) -> dict[str, Any] | None:
    """The largest gap (max minus min mean score) between groups of one group column on these
    held-out examples; groups with fewer than ``MIN_GROUP`` examples are ignored. None when
    there are no group columns or no column has two groups large enough."""
    best: dict[str, Any] | None = None
    for column in group_columns:
        by_group: dict[str, list[float]] = {}
        for ex, score in zip(examples, scores):
            by_group.setdefault(ex.groups.get(column, "(missing)"), []).append(float(score))
        means = {g: sum(v) / len(v) for g, v in by_group.items() if len(v) >= MIN_GROUP}
        if len(means) < 2:
            continue
        high = max(sorted(means), key=lambda g: means[g])
        low = min(sorted(means), key=lambda g: means[g])
        gap = means[high] - means[low]
        if best is None or gap > best["value"]:
            best = {"value": gap, "column": column, "high": high, "high_value": means[high],
                    "high_n": len(by_group[high]), "low": low, "low_value": means[low], "low_n": len(by_group[low])}
    return best


def score_generation(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    """Per-example token F1 and exact match (SQuAD normalisation) of answers vs references."""
    from auditft.textmetrics import exact_match, token_f1

    if len(predictions) != len(references):
        raise ValueError(f"kfold: {len(predictions)} answers for {len(references)} prompts")
    return {"token_f1": [token_f1(p, r) for p, r in zip(predictions, references)],
            "exact_match": [exact_match(p, r) for p, r in zip(predictions, references)]}


def evaluate_generation(session: Any, heldout: list[Example], train_sample: list[Example],
                        group_columns: list[str]) -> dict[str, Any]:
    """Score a fold's adapter on generation: ``session.generate(prompts, which="adapter")``."""
    held = score_generation(session.generate([ex.text for ex in heldout], which="adapter"),
                            [ex.response or "" for ex in heldout])
    train = score_generation(session.generate([ex.text for ex in train_sample], which="adapter"),
                             [ex.response or "" for ex in train_sample]) if train_sample else None
    held_f1 = _mean(held["token_f1"])
    train_f1 = _mean(train["token_f1"]) if train else None
    return {
        "heldout_token_f1": held_f1,
        "heldout_exact_match": _mean(held["exact_match"]),
        "train_token_f1": train_f1,
        "train_rows_scored": len(train_sample),
        "gap": None if train_f1 is None or held_f1 is None else train_f1 - held_f1,
        "subgroup_gap": subgroup_gap(heldout, held["token_f1"], group_columns) if group_columns else None,
    }


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


# -- the audit -----------------------------------------------------------------------------


class KFoldAudit:
    def __init__(self, options: KFoldOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        from auditft.data import SplitData
        from auditft.models import reusing_base_weights
        from auditft.progress import progress_bar

        started = time.perf_counter()
        k = self.options.k
        classification = job.task == "classification"
        available = list(job.data.train) + list(job.data.validation)
        all_labels = [int(ex.label) for ex in available] if classification else None  # type: ignore[arg-type]
        keep = subsample(len(available), self.options.max_rows, job.seed, all_labels)
        rows = [available[i] for i in keep]
        labels = [int(ex.label) for ex in rows] if classification else None  # type: ignore[arg-type]
        folds = fold_indices(len(rows), k, job.seed, labels)

        tuner = job.models.tuner
        tuner_options = getattr(tuner, "options", None)
        if tuner_options is None:
            raise ValueError(f"kfold: the tuner object {type(tuner).__name__} does not expose its validated "
                             "options as `.options`; kfold cannot train fresh adapters with the suite's settings")
        training = job.suite.tuner.training
        early_stopping = getattr(training, "early_stopping_patience", None) is not None
        if getattr(training, "checkpoint_steps", 0) and not early_stopping:
            # a fold is never resumed (an unfinished audit reruns), so its checkpoints would be
            # pure disk traffic; with early stopping they carry the best weights, so they stay
            training = training.model_copy(update={"checkpoint_steps": 0})
        base_all = self._base_figures(job, rows)
        root = job.work_dir / "kfold"

        fold_records: list[dict[str, Any]] = []
        try:
            # one read of the base weights for all k trainings and evaluations
            with reusing_base_weights(), progress_bar("kfold", total=k) as advance:
                for i, (train_idx, held_idx) in enumerate(folds):
                    fold_started = time.perf_counter()
                    fit_idx, val_idx = (self._carve_validation(train_idx, labels, job.seed + i)
                                        if early_stopping else (train_idx, []))
                    split = SplitData(task=job.data.task, labels=list(job.data.labels),
                                      group_columns=list(job.data.group_columns),
                                      train=[rows[j] for j in fit_idx], validation=[rows[j] for j in val_idx],
                                      test=[rows[j] for j in held_idx])
                    fold_dir = root / f"fold-{i}"
                    adapter_dir = fold_dir / "adapter"
                    if distributed.is_main():  # data-parallel runs: one process manages the files
                        shutil.rmtree(fold_dir, ignore_errors=True)
                        adapter_dir.mkdir(parents=True)
                    distributed.barrier()
                    try:
                        with distributed.adapter_target(adapter_dir) as target:
                            tuning, tune_wall = self._tune(job, tuner, tuner_options, training, split, i,
                                                           target, fold_dir)
                        sample = self._train_sample(fit_idx, len(held_idx), job.seed + i)
                        if classification:
                            scored = (split if self.options.train_accuracy_rows == "all"
                                      else replace(split, train=[rows[j] for j in sample]))
                            session = _observed(job, self._session(job, tuner, scored, adapter_dir), i, scored)
                            figures = self._evaluate_classification(session, scored)
                            figures.update(base_all.fold(fit_idx, held_idx) if base_all else {})
                        else:
                            session = _observed(job, self._session(job, tuner, split, adapter_dir), i, split)
                            figures = evaluate_generation(session, split.test, [rows[j] for j in sample],
                                                          split.group_columns)
                            figures.update(base_all.fold(sample, held_idx) if base_all else {})
                        del session
                        gc.collect()  # the fold's model goes before the next one is built
                        distributed.barrier()  # every process has read the fold's adapter
                    finally:
                        if distributed.is_main():
                            shutil.rmtree(fold_dir, ignore_errors=True)  # adapters are large; scratch only
                    fold_records.append({
                        "fold": i + 1, "n_train": len(fit_idx), "n_validation": len(val_idx),
                        "n_heldout": len(held_idx),
                        "heldout_label_counts": _label_counts(split.test, job.data.labels) if classification else None,
                        **figures,
                        "steps": int(tuning.steps), "train_seconds": round(float(tuning.seconds), 3),
                        "tune_seconds": round(tune_wall, 3),
                        "fold_seconds": round(time.perf_counter() - fold_started, 3),
                    })
                    advance(1)
        finally:
            if distributed.is_main():
                shutil.rmtree(root, ignore_errors=True)

        return self._result(job, rows, available, fold_records, base_all, early_stopping, started)

    # -- per fold ------------------------------------------------------------------------

    @staticmethod
    def _carve_validation(train_idx: list[int], labels: list[int] | None, seed: int) -> tuple[list[int], list[int]]:
        """A small seeded (stratified where possible) validation part of a fold's training rows,
        for suites whose training uses early stopping."""
        from sklearn.model_selection import train_test_split

        n_val = max(1, round(len(train_idx) * EARLY_STOPPING_FRACTION))
        stratify = [labels[j] for j in train_idx] if labels is not None else None
        if stratify is not None:
            counts: dict[int, int] = {}
            for label in stratify:
                counts[label] = counts.get(label, 0) + 1
            if min(counts.values()) < 2 or n_val < len(counts):
                stratify = None
        fit, val = train_test_split(list(train_idx), test_size=n_val, random_state=seed, stratify=stratify)
        return sorted(fit), sorted(val)

    @staticmethod
    def _tune(job: AuditJob, tuner: Any, tuner_options: Any, training: Any, split: Any, i: int,
              adapter_dir: Any, fold_dir: Any) -> tuple[Any, float]:
        from transformers import set_seed

        from auditft.jobs import TuneJob

        set_seed(job.seed + i)  # before the fresh head / adapter weights are created
        started = time.perf_counter()
        tuning = tuner.tune(TuneJob(
            suite=job.suite, task=job.task, base=job.models.base, data=split, training=training,
            options=tuner_options, seed=job.seed, adapter_dir=adapter_dir, work_dir=fold_dir,
        ))
        return tuning, time.perf_counter() - started

    @staticmethod
    def _session(job: AuditJob, tuner: Any, split: Any, adapter_dir: Any) -> Any:
        from auditft.inference import ModelSession

        return ModelSession(tuner=tuner, base=job.models.base, data=split, adapter_dir=adapter_dir,
                            max_length=job.models.max_length, batch_size=job.models.batch_size, seed=job.seed,
                            **_generation_settings(job.models))

    @staticmethod
    def _evaluate_classification(session: Any, split: Any) -> dict[str, Any]:
        from auditft.inference import labels_of
        from auditft.stats import accuracy_from, confusion, macro_f1_from

        n_classes = len(split.labels)
        y_held = labels_of(split.test)
        pred_held = session.adapter_proba("test").argmax(axis=1)
        y_train = labels_of(split.train)
        pred_train = session.adapter_proba("train").argmax(axis=1)
        cm = confusion(y_held, pred_held, n_classes)
        held_acc = float(accuracy_from(cm))
        train_acc = float(accuracy_from(confusion(y_train, pred_train, n_classes)))
        correct = (pred_held == y_held).astype(float).tolist()
        return {
            "heldout_accuracy": held_acc,
            "heldout_macro_f1": float(macro_f1_from(cm)),
            "train_accuracy": train_acc,
            "gap": train_acc - held_acc,
            "confusion": cm.tolist(),
            "subgroup_gap": subgroup_gap(split.test, correct, split.group_columns) if split.group_columns else None,
        }

    def _train_sample(self, fit_idx: list[int], size: int, seed: int) -> list[int]:
        """A seeded sample of a fold's training rows as large as its held-out fold, for the
        train score (always for generation, which is slow; for classification with
        ``train_accuracy_rows: sample``)."""
        import numpy as np

        if len(fit_idx) <= size:
            return list(fit_idx)
        rng = np.random.default_rng(seed)
        return sorted(int(j) for j in rng.choice(np.asarray(fit_idx), size=size, replace=False))

    # -- base model ----------------------------------------------------------------------

    def _base_figures(self, job: AuditJob, rows: list[Example]) -> _BaseFigures | None:
        from auditft.data import SplitData
        from auditft.inference import ModelSession

        data = SplitData(task=job.data.task, labels=list(job.data.labels), group_columns=list(job.data.group_columns),
                         train=list(rows), validation=[], test=[])
        session = ModelSession(tuner=job.models.tuner, base=job.models.base, data=data, adapter_dir=None,
                               max_length=job.models.max_length, batch_size=job.models.batch_size, seed=job.seed)
        if job.task == "classification":
            return _ProbeFigures(session.base_embeddings("train"), [int(ex.label) for ex in rows],  # type: ignore[arg-type]
                                 len(job.data.labels), job.seed)
        generate = getattr(job.models, "generate", None)
        if generate is None:
            return None
        answers = generate([ex.text for ex in rows], which="base")
        return _GenerationBase(score_generation(answers, [ex.response or "" for ex in rows]))

    # -- result --------------------------------------------------------------------------

    def _result(self, job: AuditJob, rows: list[Example], available: list[Example], folds: list[dict[str, Any]],
                base: _BaseFigures | None, early_stopping: bool, started: float) -> AuditResult:
        k = self.options.k
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
        evidence = {
            "task": job.task,
            "k": k,
            "figure": name,
            "labels": list(job.data.labels),
            "group_columns": list(job.data.group_columns),
            "n_rows": len(rows),
            "n_rows_available": len(available),
            "max_rows": self.options.max_rows,
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
        notes = [
            f"{k} fresh adapters trained with the suite's tuner, options and training settings, each on "
            f"{k - 1}/{k} of train+validation ({len(rows)} rows) and scored on the remaining fold; the "
            "test split is not used.",
            INTERVAL_NOTE,
        ]
        if has_base:
            notes.append(PROBE_NOTE if classification else GENERATION_BASE_NOTE)
        else:
            notes.append("No base model figure: the session offers no base-model generation.")
        if evidence["subsampled"]:
            notes.append(f"max_rows: a seeded stratified subsample of {len(rows)} of {len(available)} rows was "
                         "folded; that bounds the cost but widens every interval (less precision).")
        if early_stopping:
            notes.append(f"Early stopping: {EARLY_STOPPING_FRACTION:.0%} of each fold's training rows were "
                         "carved off as its validation split.")
        if not classification:
            notes.append("Generation train scores read a seeded sample of each fold's training rows as "
                         "large as its held-out fold.")
        return AuditResult(kind="kfold", metrics=metrics, evidence=_clean(evidence), notes=notes,
                           seconds=round(time.perf_counter() - started, 3))


class _BaseFigures(ABC):
    """The base model's figures on one fold (probe for classification, answers for generation)."""

    @abstractmethod
    def fold(self, train_idx: list[int], held_idx: list[int]) -> dict[str, Any]:
        """Held-out and train figures of the base model for this fold."""


class _ProbeFigures(_BaseFigures):
    """The base model on the same folds: a logistic-regression probe on frozen embeddings."""

    def __init__(self, embeddings: np.ndarray, labels: list[int], n_classes: int, seed: int) -> None:
        import numpy as np

        self.x = embeddings
        self.y = np.asarray(labels, dtype=np.int64)
        self.n_classes = n_classes
        self.seed = seed

    def fold(self, train_idx: list[int], held_idx: list[int]) -> dict[str, Any]:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        from auditft.stats import accuracy_from, confusion, macro_f1_from

        probe = LogisticRegression(max_iter=2000, C=1.0, random_state=self.seed)
        probe.fit(self.x[train_idx], self.y[train_idx])
        pred_held = np.asarray(probe.predict(self.x[held_idx]), dtype=np.int64)
        pred_train = np.asarray(probe.predict(self.x[train_idx]), dtype=np.int64)
        cm = confusion(self.y[held_idx], pred_held, self.n_classes)
        return {
            "base_heldout_accuracy": float(accuracy_from(cm)),
            "base_heldout_macro_f1": float(macro_f1_from(cm)),
            "base_train_accuracy": float(accuracy_from(confusion(self.y[train_idx], pred_train, self.n_classes))),
        }


class _GenerationBase(_BaseFigures):
    """The base model's answers (computed once for all rows), cut along the folds."""

    def __init__(self, scores: dict[str, list[float]]) -> None:
        self.scores = scores

    def fold(self, train_idx: list[int], held_idx: list[int]) -> dict[str, Any]:
        f1, em = self.scores["token_f1"], self.scores["exact_match"]
        return {
            "base_heldout_token_f1": _mean([f1[j] for j in held_idx]),
            "base_heldout_exact_match": _mean([em[j] for j in held_idx]),
            "base_train_token_f1": _mean([f1[j] for j in train_idx]),
        }


def _observed(job: AuditJob, session: Any, i: int, split: Any) -> Any:
    """The fold's session, shown to core (``job.models.observe``) so that core decides whether
    this fold's model is degenerate; as it is when the run's session does not observe."""
    observe = getattr(job.models, "observe", None)
    return observe(session, name=f"fold {i + 1} adapter", data=split) if callable(observe) else session


def _generation_settings(session: Any) -> dict[str, Any]:
    """The run session's prompt settings (system prompt, answer length), so fold sessions
    answer exactly like the run's own session; empty for sessions without them."""
    return {name: getattr(session, name) for name in ("system_prompt", "max_new_tokens") if hasattr(session, name)}


def _label_counts(examples: list[Example], labels: list[str]) -> dict[str, int]:
    counts = {name: 0 for name in labels}
    for ex in examples:
        counts[labels[int(ex.label)]] += 1  # type: ignore[arg-type]
    return counts


def _clean(value: Any) -> Any:
    """JSON-safe evidence: numpy scalars to Python, NaN / inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


# -- registration and report ---------------------------------------------------------------

SECTION = """
<p>{{ ev.k }} folds over {{ fmt(ev.n_rows) }} rows of train+validation{% if ev.subsampled %} (a seeded subsample of
{{ fmt(ev.n_rows_available) }}: <code>max_rows</code> {{ ev.max_rows }}){% endif %}: {{ ev.k }} fresh adapters, each
trained on {{ ev.k - 1 }} folds and scored on the one it never saw. Training took {{ fmt(ev.train_seconds_total, 1) }} s in all.</p>
<table class="metrics">
  <tr><th>metric</th><th>adapter</th><th>95% CI</th><th>base</th><th>delta</th></tr>
  {% for name, m in metrics.items() %}
  <tr><td>{{ name }}</td><td>{{ fmt(m.value) }}</td><td>{% if m.ci_low is not none %}{{ fmt(m.ci_low) }} – {{ fmt(m.ci_high) }}{% else %}–{% endif %}</td>
      <td>{{ fmt(m.base_value) }}</td><td>{{ signed(m.delta) }}</td></tr>
  {% endfor %}
</table>
<div class="charts">
  <figure>{{ chart }}<figcaption>Held-out {{ label }} per fold (dashed: mean; grey bar: base model on the same fold; note: the adapter on its own training rows)</figcaption></figure>
</div>
<table>
  <tr><th>fold</th><th>train rows</th><th>held-out rows</th><th>held-out {{ label }}</th>
      {% if classification %}<th>held-out macro-F1</th>{% else %}<th>held-out exact match</th>{% endif %}
      <th>train {{ label }}</th><th>gap</th><th>base held-out</th><th>largest subgroup gap</th><th>train s</th></tr>
  {% for f in ev.folds %}
  <tr><td>{{ f.fold }}</td><td>{{ f.n_train }}{% if f.n_validation %} (+{{ f.n_validation }} val){% endif %}</td><td>{{ f.n_heldout }}</td>
      <td>{{ fmt(f["heldout_" ~ figure]) }}</td>
      <td>{{ fmt(f.heldout_macro_f1 if classification else f.heldout_exact_match) }}</td>
      <td>{{ fmt(f["train_" ~ figure]) }}</td><td>{{ signed(f.gap) }}</td>
      <td>{{ fmt(f.get("base_heldout_" ~ figure)) }}</td>
      <td>{% if f.subgroup_gap %}{{ fmt(f.subgroup_gap.value) }} <span class="small">({{ f.subgroup_gap.column }}: {{ f.subgroup_gap.high }} {{ fmt(f.subgroup_gap.high_value) }} vs {{ f.subgroup_gap.low }} {{ fmt(f.subgroup_gap.low_value) }})</span>{% else %}–{% endif %}</td>
      <td>{{ fmt(f.train_seconds, 1) }}</td></tr>
  {% endfor %}
</table>
<p class="small">{% for note in notes %}{{ note }} {% endfor %}</p>
"""


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "kfold",
        KFoldAudit,
        summary="k-fold cross-validation with fresh adapters: mean, spread and train-vs-held-out gap",
        tasks=("classification", "generation"),
        options=KFoldOptions,
        metrics={**CLASSIFICATION_METRICS, **GENERATION_METRICS},
        min_n=30,
        # fold models that all predict the majority class agree perfectly and score the same on
        # their training rows as on held-out ones: zero spread, zero gap
        trivial_metrics=("kfold_std_accuracy", "kfold_std_token_f1", "generalization_gap"),
        limitations=("trains k extra adapters (k times the tuning cost; max_rows bounds it)",
                     "fold figures share training rows, so the t-intervals are somewhat optimistic",
                     "the classification base figure is a linear probe, not a zero-shot classifier"),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import render_fragment
    from auditft.report.charts import bar_chart

    result = report.get("audits", {}).get("kfold")
    if not result or result.get("error") or not result.get("evidence"):
        return []
    ev = result["evidence"]
    figure = ev.get("figure", "accuracy")
    label = "accuracy" if figure == "accuracy" else "token F1"
    metrics = result.get("metrics", {})
    mean = (metrics.get(f"kfold_mean_{figure}") or {}).get("value")
    rows = [{"label": f"fold {f['fold']}", "value": f.get(f"heldout_{figure}"),
             "base": f.get(f"base_heldout_{figure}"),
             "note": f"(train {f[f'train_{figure}']:.3f})" if is_finite(f.get(f"train_{figure}")) else ""}
            for f in ev.get("folds", [])]
    chart = bar_chart(rows, f"held-out {label} per fold", lo=0, hi=1,
                      ref=mean if is_finite(mean) else None, ref_label="mean")
    html = render_fragment(SECTION, ev=ev, metrics=metrics, notes=result.get("notes", []), chart=chart,
                           figure=figure, label=label, classification=figure == "accuracy")
    return [ReportSection(title="K-fold generalisation", html=html, anchor="audit-kfold", order=25)]
