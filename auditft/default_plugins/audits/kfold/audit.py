"""The ``kfold`` audit: cut train + validation into folds, ask core's retraining service
(``job.retrain``) for a fresh adapter per fold, score it on its held-out fold and on its own
training rows, and the base model on the same folds."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.kfold import folds as folding
from auditft.default_plugins.audits.kfold import scoring

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.kfold.options import KFoldOptions
    from auditft.default_plugins.audits.kfold.scoring import BaseFigures
    from auditft.jobs import AuditJob, Retrainer
    from auditft.records import AuditResult
    from auditft.suite import TrainingSpec


class KFoldAudit:
    def __init__(self, options: KFoldOptions) -> None:
        self.options = options

    #: kept on the class: tests and benchmarks reach it as ``KFoldAudit._carve_validation``
    _carve_validation = staticmethod(folding.carve_validation)

    def run(self, job: AuditJob) -> AuditResult:
        from auditft.default_plugins.audits.kfold.result import kfold_result
        from auditft.progress import progress_bar

        started = time.perf_counter()
        retrain = job.retrain
        if retrain is None:
            raise ValueError("kfold: this audit job has no retraining service (job.retrain); k-fold trains "
                             "its fresh adapters through core's, which `auditft run` provides")
        k = self.options.k
        classification = job.task == "classification"
        available = list(job.data.train) + list(job.data.validation)
        keep = folding.subsample(len(available), self.options.max_rows, job.seed, _labels(available, classification))
        rows = [available[i] for i in keep]
        labels = _labels(rows, classification)
        plan = folding.fold_indices(len(rows), k, job.seed, labels)

        _require_tuner_options(job)
        training = job.suite.tuner.training
        early_stopping = getattr(training, "early_stopping_patience", None) is not None
        if getattr(training, "checkpoint_steps", 0) and not early_stopping:
            # a fold is never resumed (an unfinished audit reruns), so its checkpoints would be
            # pure disk traffic; with early stopping they carry the best weights, so they stay
            training = training.model_copy(update={"checkpoint_steps": 0})
        base = scoring.base_figures(job, rows)

        records: list[dict[str, Any]] = []
        # one read of the base weights for all k trainings and evaluations
        with retrain.reusing_base(), progress_bar("kfold", total=k) as advance:
            for i, (train_idx, held_idx) in enumerate(plan):
                records.append(self._fold(job, retrain, i, rows, labels, train_idx, held_idx,
                                          training=training, early_stopping=early_stopping, base=base))
                advance(1)
        return kfold_result(job, self.options, rows, available, records, base, early_stopping, started)

    def _fold(self, job: AuditJob, retrain: Retrainer, i: int, rows: list[Example], labels: list[int] | None,
              train_idx: list[int], held_idx: list[int], *, training: TrainingSpec, early_stopping: bool,
              base: BaseFigures | None) -> dict[str, Any]:
        """Train fold ``i``'s adapter on its training rows and score it; the fold's record."""
        from auditft.data import SplitData

        started = time.perf_counter()
        classification = job.task == "classification"
        fit_idx, val_idx = (folding.carve_validation(train_idx, labels, job.seed + i)
                            if early_stopping else (train_idx, []))
        split = SplitData(task=job.data.task, labels=list(job.data.labels), group_columns=list(job.data.group_columns),
                          train=[rows[j] for j in fit_idx], validation=[rows[j] for j in val_idx],
                          test=[rows[j] for j in held_idx])
        sample = folding.train_sample(fit_idx, len(held_idx), job.seed + i)
        # what the fold's model is scored on: its held-out rows and all (or a sample of) its training rows
        scored = (split if not classification or self.options.train_accuracy_rows == "all"
                  else replace(split, train=[rows[j] for j in sample]))
        with retrain.train(split, seed=job.seed + i, name=f"fold {i + 1} adapter", training=training,
                           scored=scored) as model:
            if classification:
                figures = scoring.evaluate_classification(model.session, scored)
                figures.update(base.fold(fit_idx, held_idx) if base else {})
            else:
                figures = scoring.evaluate_generation(model.session, split.test, [rows[j] for j in sample],
                                                      split.group_columns)
                figures.update(base.fold(sample, held_idx) if base else {})
            tuning, tune_seconds = model.tuning, model.seconds
        return {
            "fold": i + 1, "n_train": len(fit_idx), "n_validation": len(val_idx),
            "n_heldout": len(held_idx),
            "heldout_label_counts": scoring.label_counts(split.test, job.data.labels) if classification else None,
            **figures,
            "steps": int(tuning.steps), "train_seconds": round(float(tuning.seconds), 3),
            "tune_seconds": round(tune_seconds, 3),
            "fold_seconds": round(time.perf_counter() - started, 3),
        }


def _labels(examples: list[Example], classification: bool) -> list[int] | None:
    return [int(ex.label) for ex in examples] if classification else None  # type: ignore[arg-type]


def _require_tuner_options(job: AuditJob) -> None:
    """Fail before any work (the base figures) when the run's tuner cannot be retrained."""
    tuner = job.models.tuner
    if getattr(tuner, "options", None) is None:
        raise ValueError(f"kfold: the tuner object {type(tuner).__name__} does not expose its validated "
                         "options as `.options`; kfold cannot train fresh adapters with the suite's settings")
