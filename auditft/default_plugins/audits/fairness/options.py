"""Options of the ``fairness`` audit (the suite's ``audits[].options``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auditft.default_plugins.audits.fairness.metrics import MIN_N


class FairnessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the label whose selection rate / TPR / FPR is compared (default: ``labels[1]``)
    positive_label: str | None = None
    #: groups smaller than this are shown but make dependent checks ``insufficient``
    min_group_size: int = Field(default=MIN_N, ge=1)
    n_boot: int = Field(default=200, ge=50, le=100_000)
    #: per-group CIs from the vectorised bootstrap ("numpy") or from fairlearn's
    #: ``MetricFrame(n_boot=...)`` ("fairlearn": same method, about 0.1 s per resample and view)
    per_group_ci: Literal["numpy", "fairlearn"] = "numpy"
    correction: Literal["holm", "bh"] = "holm"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    #: include the intersectional view in the gate metrics and the tested family
    gate_intersections: bool = False
    #: generation: answers whose token F1 is below this count as a material change
    change_threshold: float = Field(default=0.5, ge=0, le=1)
    #: counterfactual pairs answered (each pair costs two generations per model)
    max_probes: int = Field(default=100, ge=1, le=100_000)
    max_examples: int = Field(default=10, ge=0, le=500)
