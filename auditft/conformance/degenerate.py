"""Step 7 of ``check_audit``: an audit must not let a model that does nothing (one label for
every row, one abstention for every prompt) pass its checks, unless the metric is declared
trivially satisfiable (``register.add(trivial_metrics=...)``), which core then fails on a
degenerate model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from auditft.conformance.common import PluginCheckError
from auditft.conformance.fakes import ConstantModelSession, fake_job
from auditft.conformance.guards import guarded_run
from auditft.records import AuditResult, is_finite

if TYPE_CHECKING:
    from pydantic import BaseModel

    from auditft.data import SplitData
    from auditft.degeneracy import ObservedSession
    from auditft.jobs import Models
    from auditft.registry import AuditRegistry, Entry


def check_constant_model(entry: Entry, name: str, task: str, opts: BaseModel, work: Path,
                         reference: AuditResult, *, timeout: float | None = None) -> None:
    """Step 7 of ``check_audit``: gate every metric at the working model's value (``reference``)
    and run the audit on ``ConstantModelSession`` through core's degeneracy recording; any check
    that passes means the audit lets a model that does nothing through."""
    from dataclasses import replace

    from auditft import gate
    from auditft.degeneracy import classification_profile
    from auditft.isolation import profiled
    from auditft.suite import AuditSpec, GateSpec

    # with core's degeneracy recording around the audit, as in a real run
    job = fake_job(task, opts, work / f"constant-{task}", _observed_constant)
    constant = profiled(job.models, entry.kind, lambda: guarded_run(entry, job, name=name, timeout=timeout))
    if constant.error:
        raise PluginCheckError(f"plugin {name!r}: audit {entry.kind!r} failed on a constant model: {constant.error}")
    gates = []
    for metric_name, m in constant.metrics.items():
        ref = reference.metrics.get(metric_name)
        if ref is None or not is_finite(ref.value) or metric_name not in entry.metrics:
            continue
        if ref.value == m.value and ((ref.ci_low is not None and ref.ci_low == ref.ci_high)
                                     or (metric_name in entry.proportion_metrics and ref.value in (0.0, 1.0))):
            # the toy data does not exercise this metric (e.g. probes the fake cannot answer); a
            # share of 0 or 1 has an exact interval of non-zero width, so it is recognised by value
            continue
        rationale = "conformance: the working model's value"
        gates.append(GateSpec(metric=metric_name, min=float(ref.value), rationale=rationale)
                     if entry.metrics[metric_name] == "higher"
                     else GateSpec(metric=metric_name, max=float(ref.value), rationale=rationale))
    data = job.data
    subject = None
    if task == "classification" and data.test:
        subject = classification_profile("adapter", [ex.label for ex in data.test], [0] * len(data.test),
                                         list(data.labels))
    # too few toy rows must not hide a trivial pass: judge as if every floor were met
    metrics = {k: replace(m, min_n=0) for k, m in constant.metrics.items()}
    spec = AuditSpec(kind=entry.kind, gates=gates, default_gates=False)
    checks = gate.decide_specs([spec], {entry.kind: replace(constant, metrics=metrics)},
                               cast("AuditRegistry", _Floorless(entry)), subject=subject)
    passed = [c for c in checks if c.status == "pass"]
    if passed:
        listed = ", ".join(f"{c.metric} ({c.value:.3g} {'>=' if c.op == 'min' else '<='} {c.threshold:.3g})"
                           for c in passed)
        raise PluginCheckError(
            f"plugin {name!r}: audit {entry.kind!r} lets a constant model pass checks set at a working model's "
            f"value: {listed}; declare these metrics in register.add(trivial_metrics=...) so core fails them "
            "on a degenerate model, or measure something a model that does nothing cannot satisfy")


def _observed_constant(data: SplitData, seed: int) -> ObservedSession:
    """The constant model as core serves it: through a recorder, for the degeneracy rules."""
    from auditft.degeneracy import ObservedSession, Recorder

    # the constant stands in for the parts of a session audits call; it is not a complete Models
    return ObservedSession(cast("Models", ConstantModelSession(data, seed)), Recorder(list(data.labels), seed))


class _Floorless:
    """The audit registry as the gate sees it, with the evidence floor at 0 (``check_constant_model``)."""

    def __init__(self, entry: Entry) -> None:
        from dataclasses import replace

        # no evidence floor and no power check: toy data must not hide a trivial pass
        self.entry = replace(entry, min_n=0, proportion_metrics=frozenset())

    def get(self, kind: str) -> Entry | None:
        return self.entry if kind == self.entry.kind else None
