"""The ``kfold`` audit's options and its gate-metric table (metric name -> better direction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
#: the seed-stability metrics (``seeds`` >= 2): spread of the held-out figure across seeds
SEED_CLASSIFICATION_METRICS: dict[str, Direction] = {
    "seed_std_accuracy": "lower",
    "seed_range_accuracy": "lower",
}
SEED_GENERATION_METRICS: dict[str, Direction] = {
    "seed_std_token_f1": "lower",
    "seed_range_token_f1": "lower",
}
#: most seeds one audit may train (each beyond the first is one more training)
MAX_SEEDS = 20


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
    #: seed stability: retrain fold 1's split (same training rows, same held-out rows) with this
    #: many seeds and report the spread of the held-out figure across them (0: off; fold 1's own
    #: adapter is the first seed, so each further seed costs one training)
    seeds: int = Field(default=0, ge=0, le=MAX_SEEDS)

    @field_validator("seeds")
    @classmethod
    def _spread_needs_two(cls, value: int) -> int:
        if value == 1:
            raise ValueError("seeds: 1 seed has no spread; use 0 (off) or at least 2 (e.g. 3)")
        return value
