"""The gate: suite thresholds + audit results -> one status per check, and a verdict.

Core only; no hook can change it. Statuses:

* ``pass``: the conservative end of the 95% CI meets the threshold (``ci_low`` for a
  ``min``, ``ci_high`` for a ``max``; the value itself when the metric has no CI);
* ``fail``: the measured value itself misses the threshold;
* ``insufficient``: the value meets the threshold but its CI crosses it, or fewer examples
  than the audit's declared minimum stood behind it;
* ``error``: the audit crashed or produced no finite value for the metric.

A required audit that produced no result at all fails its checks: evidence that is missing
never passes silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from auditft.records import is_finite

if TYPE_CHECKING:
    from auditft.records import AuditResult
    from auditft.registry import AuditRegistry
    from auditft.suite import Suite

STATUS_ORDER = {"fail": 0, "error": 1, "insufficient": 2, "pass": 3}


@dataclass(frozen=True)
class Check:
    audit: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    op: str
    threshold: float | None
    status: str
    base_value: float | None
    delta: float | None
    rationale: str
    reason: str
    n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(suite: Suite, results: dict[str, AuditResult], audits: AuditRegistry,
           skipped: dict[str, str] | None = None) -> list[Check]:
    """One ``Check`` per gate in the suite, plus one per required audit that did not run
    cleanly (so an audit without gates still cannot fail silently). Audits in ``skipped``
    (kind -> why, e.g. the run stopped before tuning) get ``insufficient`` checks."""
    return decide_specs(suite.audits, results, audits, skipped)


def decide_specs(specs: list[Any], results: dict[str, AuditResult], audits: AuditRegistry,
                 skipped: dict[str, str] | None = None) -> list[Check]:
    checks: list[Check] = []
    for spec in specs:
        result = results.get(spec.kind)
        entry = audits.get(spec.kind)
        min_n = entry.min_n if entry else 0
        if spec.kind in (skipped or {}):
            checks.extend(_not_run(spec, "insufficient", f"not run: {skipped[spec.kind]}"))  # type: ignore[index]
            continue
        if result is None or result.error:
            if spec.required or result is not None:
                status = "error" if result is not None else "fail"
                reason = (f"audit crashed: {result.error}" if result is not None
                          else "required audit produced no result")
                checks.extend(_not_run(spec, status, reason))
            continue
        for gate in spec.gates:
            checks.append(_check(spec.kind, gate, result, min_n))
    return checks


def _not_run(spec: Any, status: str, reason: str) -> list[Check]:
    """Checks for an audit without a usable result: one per gate (or one if it has none)."""
    return [Check(audit=spec.kind, metric=gate.metric if gate else "(audit ran)",
                  value=None, ci_low=None, ci_high=None,
                  op=gate.op if gate else "min", threshold=gate.threshold if gate else None,
                  status=status, base_value=None, delta=None,
                  rationale=gate.rationale if gate else "a required audit must run", reason=reason)
            for gate in (spec.gates or [None])]


def _check(kind: str, gate: Any, result: AuditResult, min_n: int) -> Check:
    metric = result.metrics.get(gate.metric)
    common = dict(audit=kind, metric=gate.metric, op=gate.op, threshold=gate.threshold,
                  rationale=gate.rationale)
    if metric is None or not is_finite(metric.value):
        reason = "audit produced no value for this metric" if metric is None else "value is not a finite number"
        return Check(value=None if metric is None else metric.value, ci_low=None, ci_high=None,
                     status="error", base_value=None, delta=None, reason=reason, **common)
    value = float(metric.value)
    low, high = metric.ci_low, metric.ci_high
    has_ci = is_finite(low) and is_finite(high)
    bound = (low if gate.op == "min" else high) if has_ci else value
    meets = (lambda x: x >= gate.threshold) if gate.op == "min" else (lambda x: x <= gate.threshold)
    sign = ">=" if gate.op == "min" else "<="
    floor = metric.min_n if metric.min_n is not None else min_n
    if metric.n is not None and metric.n < floor:
        status, reason = "insufficient", f"only {metric.n} examples; this check needs at least {floor}"
    elif meets(bound):
        status = "pass"
        reason = (f"95% CI bound {bound:.4g} {sign} {gate.threshold:g}" if has_ci
                  else f"{value:.4g} {sign} {gate.threshold:g} (no CI)")
    elif not meets(value):
        status, reason = "fail", f"{value:.4g} misses {sign} {gate.threshold:g}"
    else:
        status = "insufficient"
        reason = f"{value:.4g} meets {sign} {gate.threshold:g} but the 95% CI reaches {bound:.4g}"
    return Check(value=value, ci_low=low if has_ci else None, ci_high=high if has_ci else None,
                 status=status, base_value=metric.base_value, delta=metric.delta, reason=reason,
                 n=metric.n, **common)


def verdict(checks: list[Check]) -> str:
    """``passed`` only when there is at least one check and every check passed."""
    return "passed" if checks and all(c.status == "pass" for c in checks) else "blocked"


def ordered(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed, errored and insufficient checks first (the report's gate table order)."""
    return sorted(checks, key=lambda c: STATUS_ORDER.get(c["status"], 0))

