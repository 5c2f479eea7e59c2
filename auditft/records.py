"""The records plugins return to core: tuning facts, metrics, audit results, report sections.

They are plain dataclasses that serialise to JSON (``to_dict``) so a result can be cached,
written to ``report.json`` and re-rendered without the plugin that produced it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One measured figure, with its 95% confidence interval where the audit has one.

    ``base_value`` is the same figure measured on the base model, so the report can show a
    delta; ``n`` is the number of examples behind it (the gate's evidence floor).
    """

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    base_value: float | None = None
    #: evidence floor for this figure when it differs from the audit's ``min_n`` (e.g. a
    #: fairness audit's ``min_group_size``); ``n`` below it makes a check ``insufficient``
    min_n: int | None = None
    #: how the figure was computed, JSON-serialisable: e.g. ``{"interval": "clopper-pearson"}``,
    #: ``{"mcnemar": {"p_value": ...}}`` for a paired delta (``auditft.stats``); shown in the report
    details: dict[str, Any] | None = None

    @property
    def delta(self) -> float | None:
        if self.value is None or self.base_value is None or not (is_finite(self.value) and is_finite(self.base_value)):
            return None
        return self.value - self.base_value

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delta": self.delta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        fields: dict[str, Any] = {k: data.get(k) for k in ("value", "ci_low", "ci_high", "n", "base_value", "min_n",
                                                            "details")}
        return cls(**fields)

    @classmethod
    def from_figure(cls, figure: dict[str, Any]) -> Metric:
        """A metric from one entry of ``auditft.stats.bootstrap_metrics`` / ``bootstrap_means``."""
        return cls(value=figure["value"], ci_low=figure.get("ci_low"), ci_high=figure.get("ci_high"),
                   n=figure.get("n"), base_value=figure.get("base_value"), details=figure.get("details"))


@dataclass(frozen=True)
class TuneResult:
    """What a tuner reports after writing its adapter directory."""

    trainable_parameters: int
    total_parameters: int
    steps: int
    seconds: float
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loss_curve"] = [[int(s), float(v)] for s, v in self.loss_curve]
        return data


@dataclass(frozen=True)
class AuditResult:
    """What an audit returns: metrics (adapter figures, base figures inside), evidence, notes.

    ``evidence`` is JSON-serialisable detail for the report section (tables, examples).
    ``rows`` lists row-level findings other tools act on, as 0-based row numbers of a data
    file (names end in ``_rows``, e.g. ``label_issue_rows``); they appear as top-level keys
    of ``audits.<kind>`` in ``report.json``.
    ``error`` is set by core when the audit crashed; its checks then show ``error``.
    ``scored_models`` is set by core too (whatever a plugin puts there is replaced): the
    degeneracy profile of every model the audit scored (``auditft.degeneracy``).
    ``plugin`` / ``plugin_version`` are set by core as well: the distribution (or built-in
    module) and version whose audit produced the result (provenance per result).
    """

    kind: str
    metrics: dict[str, Metric] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    rows: dict[str, list[int]] = field(default_factory=dict)
    scored_models: list[dict[str, Any]] = field(default_factory=list)
    plugin: str | None = None
    plugin_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "plugin": self.plugin,
            "plugin_version": self.plugin_version,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "evidence": self.evidence,
            "notes": list(self.notes),
            "seconds": self.seconds,
            "error": self.error,
            "scored_models": list(self.scored_models),
            **{name: [int(i) for i in values] for name, values in self.rows.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditResult:
        return cls(
            kind=data["kind"],
            metrics={k: Metric.from_dict(v) for k, v in data.get("metrics", {}).items()},
            evidence=data.get("evidence", {}),
            notes=list(data.get("notes", [])),
            seconds=float(data.get("seconds", 0.0)),
            error=data.get("error"),
            rows={k: list(v) for k, v in data.items() if k.endswith("_rows") and isinstance(v, list)},
            scored_models=list(data.get("scored_models", []) or []),
            plugin=data.get("plugin"),
            plugin_version=data.get("plugin_version"),
        )


@dataclass(frozen=True)
class ReportSection:
    """A section of the HTML report. ``html`` must come from ``auditft.report.render_fragment``
    (autoescaped), never from string concatenation of data."""

    title: str
    html: str
    anchor: str = ""
    order: int = 100


def is_finite(x: object) -> bool:
    """A real number that is not NaN or infinite (``None`` and booleans are not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def finite_or_none(x: Any) -> float | None:
    """A plain float, or None for NaN / infinity / None (evidence must be valid JSON)."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None
