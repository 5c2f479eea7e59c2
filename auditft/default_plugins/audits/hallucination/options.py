"""The ``hallucination`` audit's suite options; a probe file whose location is known is
checked while the suite is validated, before any training."""

from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class HallucinationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: probe jsonl, relative to the suite file; None: the probe set bundled with auditft
    probes: str | None = None
    #: sampled answers per probe for self-consistency
    samples: int = Field(default=5, ge=2, le=50)
    #: probes (round-robin over types) that get sampled answers; 0 turns self-consistency off
    consistency_probes: int = Field(default=20, ge=0, le=10_000)
    temperature: float = Field(default=0.8, gt=0, le=2.0)
    #: a grounded answer counts as a hallucination above this share of unsupported content words
    unsupported_threshold: float = Field(default=0.5, ge=0, lt=1)
    #: None: the suite's generation.max_new_tokens
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    n_boot: int = Field(default=1000, ge=100, le=100_000)
    #: worst examples per category and model in the report
    max_examples: int = Field(default=8, ge=0, le=200)

    @field_validator("probes")
    @classmethod
    def _probe_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Validate the probe file while the suite is validated, before the run starts, when its
        location is known: an absolute path, or a relative one when the caller passes the suite's
        directory as validation context (``{"suite_dir": ...}``). Otherwise the file is checked
        when the audit runs and a bad file makes the audit an ``error`` result."""
        from auditft.default_plugins.audits.hallucination.probes import load_probes
        from auditft.suite import suite_relative
        from auditft.errors import DataError

        if value is None:
            return value
        path = suite_relative(value, info.context)
        if path is not None:
            try:
                load_probes(path)
            except DataError as exc:
                raise ValueError(str(exc)) from None
        return value
