"""The ``calibration`` audit's suite options."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CalibrationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: bins of the equal-width ECE / MCE / reliability diagram and of the equal-mass ECE
    bins: int = Field(default=10, ge=2, le=100)
    n_boot: int = Field(default=1000, ge=100, le=100_000)
    #: classification: fit one temperature on the validation split and report the test ECE
    #: after it (``ece_after_temperature``), a what-if: the shipped adapter is not changed
    temperature_scaling: bool = True
    #: a group with fewer test rows makes ``ece_max_group`` insufficient (its ``min_n``)
    min_group_size: int = Field(default=30, ge=1, le=100_000)
    #: the most confidently wrong test rows shown in the report
    max_examples: int = Field(default=10, ge=0, le=500)
