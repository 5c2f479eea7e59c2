"""A fold's figures: the adapter's held-out and train scores (accuracy / macro-F1 and the
confusion matrix for classification; token F1 / exact match for generation), the largest
subgroup gap on the held-out rows, and the base model's figures on the same fold."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from auditft.data import Example, SplitData
    from auditft.jobs import AuditJob, Models

#: groups with fewer held-out examples than this are left out of a fold's subgroup gap
MIN_GROUP = 5


def mean_or_none(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


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


def evaluate_generation(session: Models, heldout: list[Example], train_sample: list[Example],
                        group_columns: list[str]) -> dict[str, Any]:
    """Score a fold's adapter on generation: ``session.generate(prompts, which="adapter")``."""
    held = score_generation(session.generate([ex.text for ex in heldout], which="adapter"),
                            [ex.response or "" for ex in heldout])
    train = score_generation(session.generate([ex.text for ex in train_sample], which="adapter"),
                             [ex.response or "" for ex in train_sample]) if train_sample else None
    held_f1 = mean_or_none(held["token_f1"])
    train_f1 = mean_or_none(train["token_f1"]) if train else None
    return {
        "heldout_token_f1": held_f1,
        "heldout_exact_match": mean_or_none(held["exact_match"]),
        "train_token_f1": train_f1,
        "train_rows_scored": len(train_sample),
        "gap": None if train_f1 is None or held_f1 is None else train_f1 - held_f1,
        "subgroup_gap": subgroup_gap(heldout, held["token_f1"], group_columns) if group_columns else None,
    }


def evaluate_classification(session: Models, split: SplitData) -> dict[str, Any]:
    """Score a fold's adapter on classification: ``split.test`` is the held-out fold, and
    ``split.train`` the training rows it is scored on for the gap."""
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


def label_counts(examples: list[Example], labels: list[str]) -> dict[str, int]:
    counts = {name: 0 for name in labels}
    for ex in examples:
        counts[labels[int(ex.label)]] += 1  # type: ignore[arg-type]
    return counts


# -- the base model on the same folds -------------------------------------------------------


class BaseFigures(ABC):
    """The base model's figures on one fold (probe for classification, answers for generation)."""

    @abstractmethod
    def fold(self, train_idx: list[int], held_idx: list[int]) -> dict[str, Any]:
        """Held-out and train figures of the base model for this fold."""


class ProbeFigures(BaseFigures):
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


class GenerationBase(BaseFigures):
    """The base model's answers (computed once for all rows), cut along the folds."""

    def __init__(self, scores: dict[str, list[float]]) -> None:
        self.scores = scores

    def fold(self, train_idx: list[int], held_idx: list[int]) -> dict[str, Any]:
        f1, em = self.scores["token_f1"], self.scores["exact_match"]
        return {
            "base_heldout_token_f1": mean_or_none([f1[j] for j in held_idx]),
            "base_heldout_exact_match": mean_or_none([em[j] for j in held_idx]),
            "base_train_token_f1": mean_or_none([f1[j] for j in train_idx]),
        }


def base_figures(job: AuditJob, rows: list[Example]) -> BaseFigures | None:
    """The base model's figures for all ``rows`` at once (embeddings, or answers), to be cut
    along the folds; None when the run's session offers no base-model generation."""
    from auditft.data import SplitData
    from auditft.inference import ModelSession

    if job.task == "classification":
        # core's session keys base embeddings by text: the fold rows the accuracy probe has
        # embedded already (the demo's train split) are not embedded again (issue 19)
        embed = getattr(job.models, "base_embed_texts", None)
        if embed is not None:
            vectors = embed([ex.text for ex in rows], "kfold rows")
        else:  # another Models implementation: embed the rows in a session of their own
            data = SplitData(task=job.data.task, labels=list(job.data.labels),
                             group_columns=list(job.data.group_columns), train=list(rows), validation=[], test=[])
            session = ModelSession.for_suite(job.suite, job.models.base, data, tuner=None, adapter_dir=None)
            vectors = session.base_embeddings("train")
        return ProbeFigures(vectors, [int(ex.label) for ex in rows],  # type: ignore[arg-type]
                            len(job.data.labels), job.seed)
    generate = getattr(job.models, "generate", None)
    if generate is None:
        return None
    answers = generate([ex.text for ex in rows], which="base")
    return GenerationBase(score_generation(answers, [ex.response or "" for ex in rows]))
