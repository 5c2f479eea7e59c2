"""What a run is while it runs: the plan ``prepare`` resolved and the context hooks see.

Part of the plugin contract (``hookspecs`` names ``RunContext``), so it depends only on the
contract records and the validated inputs, never on the orchestration in ``auditft.run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from auditft.data import SplitData
    from auditft.models import ResolvedModel
    from auditft.registry import Entry
    from auditft.suite import AuditSpec, Suite


@dataclass
class RunContext:
    """What lifecycle hooks see of a run (read-only by convention)."""

    run_id: str
    run_dir: Path
    suite: Suite
    author: str
    data: SplitData
    base: ResolvedModel
    created_at: str
    timings: dict[str, float] = field(default_factory=dict)
    #: core's degeneracy findings (``auditft.degeneracy``): rules, the adapter's profile on the
    #: test split, the base model's where an audit scored it (``report.json`` key ``validity``)
    validity: dict[str, Any] = field(default_factory=dict)
    #: sign-off facts for the report: pre-registration hashes and earlier runs that differ,
    #: resumes (from which phase, which cached results were recomputed), key fingerprints
    signoff: dict[str, Any] = field(default_factory=dict)
    #: the gate's statistics, fixed before training: the power plan of every gate on a proportion
    #: (``auditft.power``) and the family correction (``report.json`` key ``gate_statistics``)
    gate_statistics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedAudit:
    """One audit of the suite, resolved once: its spec, its registry entry, its validated options."""

    spec: AuditSpec
    entry: Entry
    options: BaseModel

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def is_data_stage(self) -> bool:
        return self.entry.stage == "data"


@dataclass
class Prepared:
    """The resolved plan of a run: validated inputs, and each kind's entry and options, looked
    up once by ``auditft.plan.prepare`` and used as they are by every phase."""

    suite: Suite
    data: SplitData
    base: ResolvedModel
    tuner: Entry
    tuner_options: BaseModel
    audits: list[PlannedAudit]
    #: time spent validating suite, options, data rows and model (the run's "setup" phase)
    seconds: float = 0.0

    @property
    def audit_options(self) -> dict[str, BaseModel]:
        return {a.kind: a.options for a in self.audits}
