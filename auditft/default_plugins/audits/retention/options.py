"""The ``retention`` audit's suite options; a probe file whose location is known is checked
while the suite is validated, before any training."""

from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

BUILTIN = "builtin"


class RetentionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: "builtin": the probe set bundled with auditft; or the suite's own JSONL probe file (path
    #: relative to the suite file; format in ``probes.py``)
    probes: str = BUILTIN
    #: keep only these probe categories (None: all)
    categories: list[str] | None = Field(default=None, min_length=1)
    #: at most this many probes, taken round-robin over categories (None: all)
    max_probes: int | None = Field(default=None, ge=1, le=100_000)
    #: retention_drop and forgotten_rate need at least this many probes the BASE model answers
    #: correctly: a base that knows nothing has nothing to forget, so a drop of 0 is no evidence
    min_base_correct: int = Field(default=20, ge=1, le=100_000)
    #: None: the suite's generation.max_new_tokens
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    n_boot: int = Field(default=1000, ge=100, le=100_000)
    #: forgotten probes shown in the report
    max_examples: int = Field(default=20, ge=0, le=500)

    @field_validator("probes")
    @classmethod
    def _probe_file(cls, value: str, info: ValidationInfo) -> str:
        """Validate the probe file while the suite is validated when its location is known: an
        absolute path, or a relative one when the caller passes the suite's directory as
        validation context (``{"suite_dir": ...}``); otherwise when the audit runs."""
        from auditft.default_plugins.audits.retention.probes import load_probes
        from auditft.suite import suite_relative
        from auditft.errors import DataError

        if value == BUILTIN:
            return value
        if not value.strip():
            raise ValueError("probes must be 'builtin' or a path to a JSONL probe file")
        path = suite_relative(value, info.context)
        if path is not None:
            try:
                load_probes(path)
            except DataError as exc:
                raise ValueError(str(exc)) from None
        return value
