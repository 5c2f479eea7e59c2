"""Options of the ``robustness`` audit (the suite's ``audits[].options``)."""

from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from auditft.default_plugins.audits.robustness.metrics import MIN_N
from auditft.default_plugins.audits.robustness.perturbations import FAMILIES


class RobustnessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: perturbation families to run, in this order
    families: list[str] = Field(default_factory=lambda: list(FAMILIES), min_length=1)
    #: char_noise: share of a row's words misspelled; word_edits: share of its edit sites
    #: rewritten (at least one either way); identity_swap swaps every listed term
    rate: float = Field(default=0.1, gt=0, le=1)
    #: test rows perturbed (a label-stratified seeded sample above it); None: 1000 for
    #: classification, 200 for generation (each costs a generation per family and model)
    max_rows: int | None = Field(default=None, ge=1, le=1_000_000)
    #: JSON word lists replacing the shipped ones key by key (abbreviations, contractions,
    #: identity), relative to the suite file
    word_lists: str | None = None
    #: generation: a perturbed answer is consistent when its token F1 with the original answer
    #: (identity swaps swapped back) is at least this
    consistency_threshold: float = Field(default=0.5, ge=0, le=1)
    #: groups with fewer identity-swapped rows are shown but not the max-group figure's choice
    min_group_size: int = Field(default=MIN_N, ge=1)
    n_boot: int = Field(default=1000, ge=100, le=100_000)
    #: worst examples per family in the report
    max_examples: int = Field(default=8, ge=0, le=200)
    #: None: the suite's generation.max_new_tokens
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown families {unknown}; use any of {list(FAMILIES)}")
        if len(set(value)) != len(value):
            raise ValueError("a family is listed twice")
        return value

    @field_validator("word_lists")
    @classmethod
    def _word_list_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked with the suite when its location is known (absolute, or the validation context's
        ``suite_dir``); otherwise when the audit runs."""
        from auditft.default_plugins.audits.robustness.wordlists import load_word_lists
        from auditft.suite import suite_relative

        if value is None:
            return value
        path = suite_relative(value, info.context)
        if path is not None:
            try:
                load_word_lists(path)
            except (OSError, ValueError) as exc:
                raise ValueError(f"word_lists {value!r}: {exc}") from None
        return value
