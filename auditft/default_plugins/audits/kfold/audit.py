"""The ``kfold`` audit: cut train + validation into folds, ask core's retraining service
(``job.retrain``) for a fresh adapter per fold, score it on its held-out fold and on its own
training rows, and the base model on the same folds."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.kfold import folds as folding
from auditft.default_plugins.audits.kfold import scoring
from auditft.default_plugins.audits.kfold.seeds import seed_record, seed_values

if TYPE_CHECKING:
    from auditft.data import Example, SplitData
    from auditft.default_plugins.audits.kfold.options import KFoldOptions
    from auditft.default_plugins.audits.kfold.scoring import BaseFigures
    from auditft.jobs import AuditJob, Models, Retrainer
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
        seed_runs: list[dict[str, Any]] | None = None
        n_seeds = self.options.seeds
        # one read of the base weights for all k trainings (+ seeds - 1) and evaluations
        with retrain.reusing_base(), progress_bar("kfold", total=k + max(0, n_seeds - 1)) as advance:
            for i, (train_idx, held_idx) in enumerate(plan):
                split = self._split(job, i, rows, labels, train_idx, held_idx, early_stopping)
                record, predictions = self._fold(job, retrain, split, training=training, base=base)
                records.append(record)
                if i == 0 and n_seeds:
                    # fold 1's adapter is seed 1 of the seed-stability runs: same split, its own seed
                    seed_runs = [seed_record(1, job.seed, "fold 1 adapter", record, predictions)]
                advance(1)
            if seed_runs is not None:
                first = self._split(job, 0, rows, labels, *plan[0], early_stopping)
                for s, seed in enumerate(seed_values(job.seed, n_seeds)[1:], start=2):
                    seed_runs.append(self._seed(job, retrain, first, s, seed, training=training))
                    advance(1)
        return kfold_result(job, self.options, rows, available, records, base, early_stopping, started,
                            seed_runs=seed_runs)

    def _split(self, job: AuditJob, i: int, rows: list[Example], labels: list[int] | None, train_idx: list[int],
               held_idx: list[int], early_stopping: bool) -> FoldSplit:
        """Fold ``i``'s rows: what its adapter trains on (less the early-stopping validation
        part), is scored on (held-out fold, training rows or a sample of them)."""
        from auditft.data import SplitData

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
        return FoldSplit(i, fit_idx, val_idx, held_idx, sample, split, scored, [rows[j] for j in sample])

    def _fold(self, job: AuditJob, retrain: Retrainer, fs: FoldSplit, *, training: TrainingSpec,
              base: BaseFigures | None) -> tuple[dict[str, Any], list[int] | None]:
        """Train fold ``fs.i``'s adapter on its training rows and score it; the fold's record
        and (classification) its held-out predictions."""
        started = time.perf_counter()
        classification = job.task == "classification"
        with retrain.train(fs.split, seed=job.seed + fs.i, name=f"fold {fs.i + 1} adapter", training=training,
                           scored=fs.scored) as model:
            figures, predictions = _score(job, model.session, fs)
            if base:
                figures.update(base.fold(fs.fit_idx if classification else fs.sample, fs.held_idx))
            tuning, tune_seconds = model.tuning, model.seconds
        return {
            "fold": fs.i + 1, "n_train": len(fs.fit_idx), "n_validation": len(fs.val_idx),
            "n_heldout": len(fs.held_idx),
            "heldout_label_counts": scoring.label_counts(fs.split.test, job.data.labels) if classification else None,
            **figures,
            "steps": int(tuning.steps), "train_seconds": round(float(tuning.seconds), 3),
            "tune_seconds": round(tune_seconds, 3),
            "fold_seconds": round(time.perf_counter() - started, 3),
        }, predictions

    def _seed(self, job: AuditJob, retrain: Retrainer, fs: FoldSplit, s: int, seed: int, *,
              training: TrainingSpec) -> dict[str, Any]:
        """Seed ``s``'s adapter: fold 1's split again, trained from ``seed``; no base figures
        (the frozen base model has no training seed)."""
        started = time.perf_counter()
        name = f"seed {s} adapter"
        with retrain.train(fs.split, seed=seed, name=name, training=training, scored=fs.scored) as model:
            figures, predictions = _score(job, model.session, fs)
            record = {**figures, "steps": int(model.tuning.steps), "train_seconds": round(float(model.tuning.seconds), 3),
                      "tune_seconds": round(model.seconds, 3), "fold_seconds": round(time.perf_counter() - started, 3)}
        return seed_record(s, seed, name, record, predictions)


@dataclass(frozen=True)
class FoldSplit:
    """One fold's rows: indices into the folded rows and the splits its adapter sees."""

    i: int
    fit_idx: list[int]
    val_idx: list[int]
    held_idx: list[int]
    sample: list[int]
    split: SplitData
    scored: SplitData
    sample_rows: list[Example]


def _score(job: AuditJob, session: Models, fs: FoldSplit) -> tuple[dict[str, Any], list[int] | None]:
    """A retrained adapter's figures on its fold, and its held-out predictions (classification)."""
    if job.task == "classification":
        figures = scoring.evaluate_classification(session, fs.scored)
        # cached by the session: the predictions the figures were computed from
        return figures, [int(p) for p in session.adapter_proba("test").argmax(axis=1)]
    return scoring.evaluate_generation(session, fs.split.test, fs.sample_rows, fs.split.group_columns), None


def _labels(examples: list[Example], classification: bool) -> list[int] | None:
    return [int(ex.label) for ex in examples] if classification else None  # type: ignore[arg-type]


def _require_tuner_options(job: AuditJob) -> None:
    """Fail before any work (the base figures) when the run's tuner cannot be retrained."""
    tuner = job.models.tuner
    if getattr(tuner, "options", None) is None:
        raise ValueError(f"kfold: the tuner object {type(tuner).__name__} does not expose its validated "
                         "options as `.options`; kfold cannot train fresh adapters with the suite's settings")
