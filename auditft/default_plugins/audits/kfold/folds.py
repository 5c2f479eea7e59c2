"""Which rows each fold trains on and is scored on: the seeded subsample, the (stratified)
folds, the validation part carved off a fold's training rows for early stopping, and the
train-row sample scored for the generalisation gap. Pure index arithmetic, no model."""

from __future__ import annotations

#: share of a fold's training rows carved off as validation when the suite uses early stopping
EARLY_STOPPING_FRACTION = 0.1


def fold_indices(n: int, k: int, seed: int, labels: list[int] | None = None) -> list[tuple[list[int], list[int]]]:
    """``k`` (train, held-out) index lists over ``range(n)``: stratified by ``labels`` when
    given (classification), plain shuffled ``KFold`` otherwise. Every index is held out once."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    if n < 2 * k:
        raise ValueError(f"kfold: {n} rows are too few for k={k} folds (need at least {2 * k}); lower k")
    x = np.zeros((n, 1))
    if labels is not None:
        counts = _counts(labels)
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
        counts = _counts(labels)
        if min(counts.values()) < 2 or max_rows < len(counts):
            stratify = None
    keep, _ = train_test_split(list(range(n)), train_size=max_rows, random_state=seed, stratify=stratify)
    return sorted(int(i) for i in keep)


def carve_validation(train_idx: list[int], labels: list[int] | None, seed: int) -> tuple[list[int], list[int]]:
    """A small seeded (stratified where possible) validation part of a fold's training rows,
    for suites whose training uses early stopping."""
    from sklearn.model_selection import train_test_split

    n_val = max(1, round(len(train_idx) * EARLY_STOPPING_FRACTION))
    stratify = [labels[j] for j in train_idx] if labels is not None else None
    if stratify is not None:
        counts = _counts(stratify)
        if min(counts.values()) < 2 or n_val < len(counts):
            stratify = None
    fit, val = train_test_split(list(train_idx), test_size=n_val, random_state=seed, stratify=stratify)
    return sorted(fit), sorted(val)


def train_sample(fit_idx: list[int], size: int, seed: int) -> list[int]:
    """A seeded sample of a fold's training rows as large as its held-out fold, for the
    train score (always for generation, which is slow; for classification with
    ``train_accuracy_rows: sample``)."""
    import numpy as np

    if len(fit_idx) <= size:
        return list(fit_idx)
    rng = np.random.default_rng(seed)
    return sorted(int(j) for j in rng.choice(np.asarray(fit_idx), size=size, replace=False))


def _counts(labels: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts
