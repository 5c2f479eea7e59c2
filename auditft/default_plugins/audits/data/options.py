"""Options and constants of the ``data`` audit (the suite's ``audits[].options``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KIND = "data"
#: the audit's evidence floor: fewer training (or test) rows than this make a check insufficient
MIN_N = 20
#: characters of a row's text kept in the evidence (already masked)
SHOWN_CHARS = 300
#: the personal-data types this audit counts (of ``auditft.pii.TYPES``), and masks in what it shows
PII_TYPES = ("email", "phone", "credit_card", "ssn", "nino")

GATE_METRICS: dict[str, Literal["higher", "lower"]] = {
    "label_issue_rate": "lower",
    "duplicate_rate": "lower",
    "train_test_overlap_rate": "lower",
    "min_group_count": "higher",
    "min_intersection_count": "higher",
    "min_label_share": "higher",
    "pii_row_rate": "lower",
    "truncated_rate": "lower",
}


class DataOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: cross-validation folds for the out-of-fold probabilities (fewer if a class is smaller)
    folds: int = Field(default=5, ge=2, le=20)
    #: what the label-issue model sees: the base model's embeddings, TF-IDF of the text, or both
    features: Literal["embeddings", "tfidf", "both"] = "tfidf"
    #: inverse regularisation strength of the logistic regression
    c: float = Field(default=1.0, gt=0, le=1e6)
    #: cleanlab's ``filter_by``
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                       "predicted_neq_given"] = "prune_by_noise_rate"
    #: Jaccard similarity of word-shingle sets from which two texts are near duplicates
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1)
    #: words per shingle (1: word sets, which keeps one changed word above 0.8 in short texts)
    shingle_size: int = Field(default=1, ge=1, le=10)
    num_perm: int = Field(default=128, ge=16, le=1024)
    #: a group or intersection with fewer training rows is flagged
    min_group_count: int = Field(default=30, ge=1)
    pii_types: list[str] = Field(default_factory=lambda: list(PII_TYPES))
    max_examples: int = Field(default=10, ge=0, le=500)
    export_cleaned: bool = True
    export_masked: bool = False

    @field_validator("pii_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown pii_types {unknown}; known: {list(PII_TYPES)}")
        return value
