"""Typed registries handed to the registration hooks.

Each entry records which plugin (and which distribution version) contributed it, so the
report and ``auditft plugins`` can show exactly what code produced a verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from auditft.errors import PluginError

Task = Literal["classification", "generation"]
TASKS: tuple[str, ...] = ("classification", "generation")
Direction = Literal["higher", "lower"]
Stage = Literal["model", "data"]


class NoOptions(BaseModel):
    """Options model for plugins that take none: any key is an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Entry:
    """One registered tuner or audit kind."""

    kind: str
    factory: Callable[[Any], Any]
    plugin: str
    version: str | None
    summary: str = ""
    tasks: tuple[str, ...] = TASKS
    options: type[BaseModel] = NoOptions
    #: audits only: gate metric name -> which direction is better
    metrics: Mapping[str, Direction] = field(default_factory=dict)
    #: audits only: fewer examples than this makes every check ``insufficient``
    min_n: int = 0
    limitations: tuple[str, ...] = ()
    #: the plugin reaches the network when it runs (shown so offline sites can refuse it)
    needs_network: bool = False
    #: model weights or data the plugin fetches or loads beyond the suite's base model
    extra_weights: tuple[str, ...] = ()
    #: audits only: "model" audits run after tuning on base + adapter; "data" audits run
    #: before tuning on the suite's data (and the base model) and may stop the run
    stage: Stage = "model"
    #: audits only: metrics a degenerate model (one class, abstains on everything) satisfies
    #: trivially; the gate never lets a check on one pass when a model behind it is degenerate
    trivial_metrics: frozenset[str] = frozenset()
    #: audits only: gates (``{"metric", "min" | "max", "rationale"}``) applied unless the suite
    #: gates that metric itself or sets ``default_gates: false`` on the audit
    default_gates: tuple[Mapping[str, Any], ...] = ()
    #: audits only: metrics that have no sample size by nature (a count of flagged groups, a
    #: configuration fact); every other gated metric without ``n`` cannot pass a ``min_n`` rule
    sample_free_metrics: frozenset[str] = frozenset()
    #: audits only: metrics that are shares of ``n`` items (0/1 per item): the gate's power check
    #: before training says how many items a gate on one needs (``auditft.power``)
    proportion_metrics: frozenset[str] = frozenset()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "plugin": self.plugin,
            "version": self.version,
            "summary": self.summary,
            "tasks": list(self.tasks),
            "metrics": dict(self.metrics),
            "min_n": self.min_n,
            "limitations": list(self.limitations),
            "needs_network": self.needs_network,
            "extra_weights": list(self.extra_weights),
            "stage": self.stage,
            "trivial_metrics": sorted(self.trivial_metrics),
            "default_gates": [dict(g) for g in self.default_gates],
            "sample_free_metrics": sorted(self.sample_free_metrics),
            "proportion_metrics": sorted(self.proportion_metrics),
        }


class _Registry:
    """Kind -> Entry, filled by one plugin at a time (``current_plugin`` set by core)."""

    what = "kind"

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self.current_plugin = "<unknown>"
        self.current_version: str | None = None

    def _add(self, kind: str, factory: Callable[[Any], Any], **fields: Any) -> None:
        if not isinstance(kind, str) or not kind.replace("-", "").replace("_", "").isalnum():
            raise PluginError(
                f"plugin {self.current_plugin!r} registered an invalid {self.what} name {kind!r}"
            )
        if not callable(factory):
            raise PluginError(
                f"plugin {self.current_plugin!r} registered {self.what} {kind!r} "
                "with a factory that is not callable"
            )
        if kind in self._entries:
            other = self._entries[kind].plugin
            raise PluginError(
                f"{self.what} {kind!r} is registered twice: by plugin {other!r} "
                f"and by plugin {self.current_plugin!r}"
            )
        options = fields.get("options") or NoOptions
        if not (isinstance(options, type) and issubclass(options, BaseModel)):
            raise PluginError(
                f"plugin {self.current_plugin!r}: options for {kind!r} must be a pydantic model"
            )
        fields["options"] = options
        self._entries[kind] = Entry(
            kind=kind,
            factory=factory,
            plugin=self.current_plugin,
            version=self.current_version,
            **fields,
        )

    def get(self, kind: str) -> Entry | None:
        return self._entries.get(kind)

    def require(self, kind: str) -> Entry:
        """The entry of a kind the suite was already checked to name (``check_plugins``)."""
        entry = self._entries.get(kind)
        if entry is None:
            raise KeyError(f"no {self.what} {kind!r} registered")
        return entry

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.kind))

    def __len__(self) -> int:
        return len(self._entries)


class TunerRegistry(_Registry):
    """Passed to ``auditft_register_tuners``."""

    what = "tuner"

    def add(
        self,
        kind: str,
        factory: Callable[[Any], Any],
        *,
        summary: str = "",
        tasks: tuple[str, ...] = TASKS,
        options: type[BaseModel] | None = None,
        limitations: tuple[str, ...] = (),
        needs_network: bool = False,
        extra_weights: tuple[str, ...] = (),
    ) -> None:
        """Register tuner ``kind``. ``factory(options)`` returns an object with
        ``tune(job) -> TuneResult``; ``options`` is the pydantic model validating
        ``tuner.options`` in suites. ``needs_network`` / ``extra_weights`` declare what it
        fetches or loads beyond the suite's base model."""
        self._add(
            kind, factory, summary=summary, tasks=tuple(tasks), options=options,
            limitations=tuple(limitations), needs_network=bool(needs_network),
            extra_weights=tuple(extra_weights),
        )


class AuditRegistry(_Registry):
    """Passed to ``auditft_register_audits``."""

    what = "audit"

    def add(
        self,
        kind: str,
        factory: Callable[[Any], Any],
        *,
        summary: str = "",
        tasks: tuple[str, ...] = TASKS,
        options: type[BaseModel] | None = None,
        metrics: Mapping[str, Direction] | None = None,
        min_n: int = 0,
        limitations: tuple[str, ...] = (),
        needs_network: bool = False,
        extra_weights: tuple[str, ...] = (),
        stage: Stage = "model",
        trivial_metrics: tuple[str, ...] | frozenset[str] = (),
        default_gates: tuple[Mapping[str, Any], ...] = (),
        sample_free_metrics: tuple[str, ...] | frozenset[str] = (),
        proportion_metrics: tuple[str, ...] | frozenset[str] = (),
    ) -> None:
        """Register audit ``kind``. ``factory(options)`` returns an object with
        ``run(job) -> AuditResult``. ``metrics`` declares every gate metric name the audit
        can produce and whether higher or lower is better. ``trivial_metrics`` names those of
        them that a degenerate model satisfies trivially (a constant classifier has zero parity
        and odds differences; a model that always abstains has no hallucinations): a check on
        one never passes when core finds a model behind it degenerate
        (``auditft.testing.check_audit`` fails an audit that leaves such a metric undeclared).
        ``default_gates`` are gates the audit applies unless the suite gates the same metric or
        turns them off (``default_gates: false`` on the audit). ``sample_free_metrics`` names
        metrics that have no sample size by nature: any other gated metric reported without ``n``
        cannot pass while the audit declares a ``min_n`` (missing evidence is not evidence).
        ``proportion_metrics`` names metrics that are shares of ``n`` items: the gate checks
        before training that the test data can power a gate on one (``auditft.power``).
        ``stage="data"`` audits run before
        tuning (``job.models`` then offers only base-model methods such as
        ``base_embeddings``); a failed check stops the run unless the suite says
        ``on_fail: continue``."""
        if stage not in ("model", "data"):
            raise PluginError(f"plugin {self.current_plugin!r}: audit {kind!r} has stage {stage!r}; "
                              "use 'model' or 'data'")
        metrics = dict(metrics or {})
        for name, direction in metrics.items():
            if direction not in ("higher", "lower"):
                raise PluginError(
                    f"plugin {self.current_plugin!r}: metric {name!r} of audit {kind!r} has "
                    f"direction {direction!r}; use 'higher' or 'lower'"
                )
        declared = {"trivial_metrics": frozenset(trivial_metrics or ()),
                    "sample_free_metrics": frozenset(sample_free_metrics or ()),
                    "proportion_metrics": frozenset(proportion_metrics or ())}
        for what, names in declared.items():
            unknown = sorted(names - set(metrics))
            if unknown:
                raise PluginError(
                    f"plugin {self.current_plugin!r}: audit {kind!r} declares {what} {unknown} "
                    "that are not among its metrics"
                )
        for spec in default_gates:
            bound = [b for b in ("min", "max") if b in spec]
            if spec.get("metric") not in metrics or len(bound) != 1 or not spec.get("rationale"):
                raise PluginError(
                    f"plugin {self.current_plugin!r}: audit {kind!r} default gate {dict(spec)!r} needs a declared "
                    "metric, exactly one of 'min' / 'max' and a rationale"
                )
        self._add(
            kind, factory, summary=summary, tasks=tuple(tasks), options=options,
            metrics=metrics, min_n=int(min_n), limitations=tuple(limitations),
            needs_network=bool(needs_network), extra_weights=tuple(extra_weights), stage=stage,
            default_gates=tuple(dict(g) for g in default_gates), **declared,
        )


class PluginSet(Protocol):
    """What validating a suite needs of a plugin manager: the two registries and the hint for
    a kind that is unknown because some plugin failed to load (``auditft.plugins.PluginManager``)."""

    @property
    def tuners(self) -> TunerRegistry: ...

    @property
    def audits(self) -> AuditRegistry: ...

    def failure_for(self, kind: str) -> str | None: ...
