"""Label issues: rows whose given label is probably wrong (classification only).

Out-of-fold class probabilities from a cheap model (a logistic regression on TF-IDF of the
text, the base model's mean-pooled embeddings, or both), then confident learning (cleanlab
``find_label_issues``, ranked by self-confidence). Flagged rows are suspects for a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from auditft.default_plugins.audits.data.findings import Findings, rate, show
from auditft.records import finite_or_none

if TYPE_CHECKING:
    import numpy as np
    from scipy.sparse import spmatrix

    from auditft.data import Example
    from auditft.default_plugins.audits.data.options import DataOptions
    from auditft.jobs import AuditJob


@dataclass
class LabelIssues:
    """Rows flagged by confident learning, worst first.

    ``indices`` are positions in the inputs; ``suggested`` the most probable label under the
    out-of-fold model; ``quality`` the out-of-fold probability of the given label (cleanlab's
    self-confidence: low means the model doubts the label).
    """

    indices: list[int]
    suggested: list[int]
    quality: list[float]
    pred_probs: np.ndarray
    folds: int
    #: out-of-fold accuracy of the cheap model on the given labels (how much to trust it)
    cv_accuracy: float


def out_of_fold_probs(features: np.ndarray | spmatrix, labels: np.ndarray, *, folds: int = 5, seed: int = 0,
                      c: float = 1.0) -> tuple[np.ndarray, int]:
    """Out-of-fold ``predict_proba`` of a logistic regression (stratified, seeded folds): each
    row is scored by a model that never saw it, as confident learning requires. Dense features
    (embeddings) are standardised first; sparse ones (TF-IDF) are used as they are. Returns the
    probabilities and the number of folds used (fewer when a class is smaller than ``folds``)."""
    import numpy as np
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = min(Counter(labels.tolist()).values())
    if smallest < 2:
        raise ValueError(f"out-of-fold probabilities need at least 2 rows of every label; one has {smallest}")
    k = min(folds, smallest)
    if not sparse.issparse(features):
        features = np.asarray(features, dtype=float)
    classifier = LogisticRegression(max_iter=3000, C=c, random_state=seed)
    model = classifier if sparse.issparse(features) else make_pipeline(StandardScaler(), classifier)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    # one thread: these fits are small, and on a shared 2-core machine each OpenMP step waited
    # for the second thread to get a core (10k rows: 12.1 s with 2 threads, 0.14 s with 1,
    # the same iterations; benchmarks/p9_scaling.py)
    with threadpool_limits(1):
        probs = cross_val_predict(model, features, labels, cv=cv, method="predict_proba")
    return np.asarray(probs, dtype=float), k


def text_features(texts: Sequence[str], embeddings: np.ndarray | None = None) -> spmatrix:
    """Sparse TF-IDF of word 1-2 grams (seen in at least 2 rows), optionally beside the
    L2-normalised embeddings. Fitted on every row without labels: no label information leaks
    across folds."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    min_df = 2 if len(texts) >= 10 else 1
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True).fit_transform(list(texts))
    if embeddings is None:
        return tfidf.tocsr()
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    dense = embeddings / np.where(norms > 0, norms, 1.0)
    return sparse.hstack([tfidf, sparse.csr_matrix(dense)]).tocsr()


def label_issues(features: np.ndarray | spmatrix, labels: Sequence[int | None], *, folds: int = 5,
                 seed: int = 0, c: float = 1.0, filter_by: str = "prune_by_noise_rate") -> LabelIssues:
    """Confident learning on out-of-fold probabilities; labels are remapped to the classes
    present (a declared label with no rows has no column) and mapped back."""
    import numpy as np
    from cleanlab.filter import find_label_issues

    given = np.asarray(labels, dtype=np.int64)
    classes = np.unique(given)
    if len(classes) < 2:
        raise ValueError("label-issue detection needs at least two labels present")
    counts = np.bincount(np.searchsorted(classes, given))
    if counts.min() < 2:
        raise ValueError(f"label-issue detection needs at least 2 rows of every label present; label "
                         f"{int(classes[counts.argmin()])} has {int(counts.min())}")
    compact = np.searchsorted(classes, given)
    probs, k = out_of_fold_probs(features, compact, folds=folds, seed=seed, c=c)
    ranked = find_label_issues(compact, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence",
                               n_jobs=1)  # no worker processes on a shared machine
    ranked = [int(i) for i in ranked]
    return LabelIssues(
        indices=ranked,
        suggested=[int(classes[int(probs[i].argmax())]) for i in ranked],
        quality=[float(probs[i, compact[i]]) for i in ranked],
        pred_probs=probs,
        folds=k,
        cv_accuracy=float((probs.argmax(axis=1) == compact).mean()),
    )


FEATURE_TEXT = {"embeddings": "the base model's mean-pooled embeddings (standardised)",
                "tfidf": "TF-IDF of word 1-2 grams",
                "both": "TF-IDF of word 1-2 grams beside the L2-normalised base model embeddings"}


def check_label_issues(job: AuditJob, rows: list[Example], out: Findings, options: DataOptions) -> None:
    """The audit step: ``label_issue_rate``, the flagged rows, suspects and suggested labels."""
    if job.task != "classification":
        out.notes.append("Label issues: skipped; a generation task has no class labels to check.")
        return
    opts = options
    found = label_issues(features(job, rows, options), [ex.label for ex in rows], folds=opts.folds,
                         seed=job.seed, c=opts.c, filter_by=opts.filter_by)
    names = job.data.labels
    n = len(rows)

    def name(ex: Example) -> str:
        return names[cast(int, ex.label)]  # classification rows always carry a label

    out.metrics["label_issue_rate"] = rate(len(found.indices), n)
    out.rows["label_issue_rows"] = sorted(rows[i].row for i in found.indices)
    ranked = list(zip(found.indices, found.suggested, found.quality))  # worst first
    suspects = [{"row": rows[i].row, "text": show(rows[i].text), "given": name(rows[i]),
                 "suggested": names[s], "label_quality": round(q, 4)} for i, s, q in ranked[:opts.max_examples]]
    out.suggestions = {rows[i].row: {"suggested_label": names[s], "label_quality": round(q, 4)}
                       for i, s, q in ranked}
    by_label: dict[str, int] = {label: 0 for label in names}
    for i in found.indices:
        by_label[name(rows[i])] += 1
    out.evidence["label_issues"] = {
        "n": n, "flagged": len(found.indices), "features": opts.features, "folds": found.folds,
        "c": opts.c, "filter_by": opts.filter_by, "cv_accuracy": finite_or_none(found.cv_accuracy),
        "by_given_label": by_label, "suspects": suspects,
    }
    out.notes.append(
        f"Label issues: out-of-fold probabilities ({found.folds}-fold stratified, seeded) of a logistic "
        f"regression (C={opts.c:g}) on {FEATURE_TEXT[opts.features]}, then confident learning (cleanlab "
        f"find_label_issues, filter_by={opts.filter_by}, ranked by self-confidence). label_quality is the "
        "out-of-fold probability of the given label. Flagged rows are suspects for a person to review, never "
        "relabelled automatically.")
    if found.cv_accuracy < 0.85:
        out.notes.append(
            f"The label-issue model is only {found.cv_accuracy:.1%} accurate out of fold, so many flagged rows "
            "are hard examples it gets wrong rather than wrong labels; read label_issue_rate as an upper "
            "bound and review the top suspects first (option features: tfidf or both may separate better).")


def features(job: AuditJob, rows: list[Example], options: DataOptions) -> np.ndarray | spmatrix:
    """What the label-issue model sees for ``rows`` (in train-file order), per ``options.features``."""
    import numpy as np

    if options.features == "tfidf":
        return text_features([ex.text for ex in rows])
    splits = [split for split in ("train", "validation") if getattr(job.data, split)]
    embeddings = np.concatenate([np.asarray(job.models.base_embeddings(split)) for split in splits])
    if len(embeddings) != len(rows):
        raise ValueError(f"base_embeddings gave {len(embeddings)} rows for {len(rows)} training rows")
    # embeddings come in split order; ``rows`` are in file order
    position = {id(ex): i for i, ex in enumerate(ex for split in splits for ex in getattr(job.data, split))}
    embeddings = embeddings[[position[id(ex)] for ex in rows]]
    if options.features == "both":
        return text_features([ex.text for ex in rows], embeddings)
    return embeddings
