"""The ``kfold`` audit's options and its gate-metric table (metric name -> better direction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from auditft.registry import Direction

CLASSIFICATION_METRICS: dict[str, Direction] = {
    "kfold_mean_accuracy": "higher",
    "kfold_std_accuracy": "lower",
    "kfold_min_accuracy": "higher",
    "kfold_mean_macro_f1": "higher",
    "generalization_gap": "lower",
}
GENERATION_METRICS: dict[str, Direction] = {
    "kfold_mean_token_f1": "higher",
    "kfold_std_token_f1": "lower",
    "kfold_min_token_f1": "higher",
    "kfold_mean_exact_match": "higher",
    "generalization_gap": "lower",
}


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
