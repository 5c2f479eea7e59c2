"""The gate: suite thresholds + audit results -> one status per check, and a verdict.

Core only; no hook can change it. Statuses:

* ``pass``: the conservative end of the 95% CI meets the threshold (``ci_low`` for a
  ``min``, ``ci_high`` for a ``max``; the value itself when the metric has no CI), with at
  least the audit's declared minimum of examples behind it;
* ``fail``: the value misses the threshold and its whole CI lies on the failing side, at any
  sample size (a one-sided test at 2.5%: a model that truly meets the threshold gets ``fail``
  at most 2.5% of the time); or, for a metric without a CI, the value misses it (with enough
  examples); or the metric is one
  its audit declares trivially satisfied by a degenerate model and a model behind it is
  degenerate (``auditft.degeneracy``);
* ``insufficient``: fewer examples than the declared minimum (too few examples only keep a
  check from passing, they never hide a failure the CI already shows), or no sample size at all
  on a metric its audit does not declare sample-free (``sample_free_metrics``) while the audit
  has a minimum; or fewer items than the power check says a gate on a proportion needs
  (``auditft.power``: insufficient by design); or the CI crosses the threshold, whichever side
  the value is on; or (suite ``gate_correction: holm``) the check passes alone but not after Holm's
  correction across the family of gated checks (``holm_correct``);
* ``error``: the audit crashed or produced no finite value for the metric.

A required audit that produced no result at all fails its checks: evidence that is missing
never passes silently. Every model run also carries the core check
``core:model_not_degenerate`` (``subject_check``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from auditft.records import is_finite

if TYPE_CHECKING:
    from auditft.degeneracy import Profile
    from auditft.records import AuditResult
    from auditft.registry import AuditRegistry, Entry
    from auditft.suite import AuditSpec, GateSpec, Suite

STATUS_ORDER = {"fail": 0, "error": 1, "insufficient": 2, "pass": 3}
#: the core check that the model under test is not degenerate (``audit:metric`` for waivers)
CORE_AUDIT, CORE_METRIC = "core", "model_not_degenerate"
CORE_RATIONALE = ("a model that does nothing (one class, no better than chance, abstains on everything) "
                  "must never pass; core decides this, not the audits")


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
    #: how the check was decided beyond the CI: the metric's own ``details`` (interval method,
    #: McNemar test), ``power`` (items needed) and ``correction`` (Holm's adjusted p-value)
    details: dict[str, Any] | None = None
    #: provenance: the plugin (distribution or built-in module) and version whose audit the
    #: check decides on; ``auditft`` for core's own checks
    plugin: str | None = None
    plugin_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(suite: Suite, results: dict[str, AuditResult], audits: AuditRegistry,
           skipped: dict[str, str] | None = None, *, subject: Profile | None = None) -> list[Check]:
    """One ``Check`` per gate in the suite, plus one per required audit that did not run
    cleanly (so an audit without gates still cannot fail silently). Audits in ``skipped``
    (kind -> why, e.g. the run stopped before tuning) get ``insufficient`` checks.
    ``subject`` is core's degeneracy profile of the adapter on the test split; it stands for the
    models behind an audit that scored none through core's session."""
    checks = decide_specs(suite.audits, results, audits, skipped, subject=subject)
    if getattr(suite, "gate_correction", "none") == "holm":
        checks = holm_correct(checks)
    return checks


def decide_specs(specs: list[Any], results: dict[str, AuditResult], audits: AuditRegistry,
                 skipped: dict[str, str] | None = None, *, subject: Profile | None = None) -> list[Check]:
    checks: list[Check] = []
    for spec in specs:
        entry = audits.get(spec.kind)
        # provenance per check: which plugin's audit (and which version) it decides on
        stamp: dict[str, Any] = {"plugin": entry.plugin, "plugin_version": entry.version} if entry else {}
        checks.extend(replace(c, **stamp) for c in _spec_checks(spec, results.get(spec.kind), entry, skipped, subject))
    return checks


def _spec_checks(spec: AuditSpec, result: AuditResult | None, entry: Entry | None, skipped: dict[str, str] | None,
                 subject: Profile | None) -> list[Check]:
    checks: list[Check] = []
    min_n = entry.min_n if entry else 0
    gates = effective_gates(spec, entry)
    if skipped and spec.kind in skipped:
        return _not_run(spec, gates, "insufficient", f"not run: {skipped[spec.kind]}")
    if result is None or result.error:
        if spec.required or result is not None:
            status = "error" if result is not None else "fail"
            reason = (f"audit crashed: {result.error}" if result is not None
                      else "required audit produced no result")
            return _not_run(spec, gates, status, reason)
        return []
    trivial = entry.trivial_metrics if entry else frozenset()
    degenerate = _degenerate_models(result, subject)
    sample_free = entry.sample_free_metrics if entry else frozenset()
    proportions = entry.proportion_metrics if entry else frozenset()
    for gate in effective_gates(spec, entry):
        check = _check(spec.kind, gate, result, min_n, sample_free=gate.metric in sample_free)
        if gate.metric in proportions:
            check = _powered(check, gate)
        if gate.metric in trivial and degenerate and check.status in ("pass", "insufficient"):
            # a model doing nothing satisfies this metric trivially: no evidence either way
            check = replace(check, status="fail", reason=(
                f"{'; '.join(degenerate)}: a degenerate model satisfies {gate.metric} trivially "
                f"(it would have been {check.status}: {check.reason})"))
        checks.append(check)
    return checks


def _degenerate_models(result: AuditResult, subject: Profile | None) -> list[str]:
    """Why the models behind ``result`` are degenerate: every model the audit scored except the
    base model (base figures are comparisons), plus the adapter as core profiled it on the test
    split (``subject``) when the audit measured the adapter or core saw it score nothing. An
    adapter that abstains on 81% of an audit's probes can pass that audit's own 95% rule and
    still be degenerate on the test split: its trivially satisfied metrics then fail too."""
    from auditft.degeneracy import Profile

    scored = [p for p in (Profile.from_dict(d) for d in result.scored_models) if not p.is_base]
    if subject is not None and (not scored or any(p.model == "adapter" for p in scored)):
        scored.append(subject)
    reasons: list[str] = []
    for profile in scored:
        if profile.degenerate and profile.summary() not in reasons:
            reasons.append(profile.summary())
    if len(reasons) > 3:
        reasons = [*reasons[:3], f"and {len(reasons) - 3} more degenerate models"]
    return reasons


def subject_check(subject: Profile | None, base: Profile | None = None, *, not_run: str | None = None) -> Check:
    """The core check that the model under test (the adapter, on the test split) is not
    degenerate: value 1 when it is not, 0 when it is; ``error`` when it could not be scored."""
    from auditft.version import __version__

    common: dict[str, Any] = dict(audit=CORE_AUDIT, metric=CORE_METRIC, op="min", threshold=1.0,
                                  rationale=CORE_RATIONALE, ci_low=None, ci_high=None, delta=None,
                                  plugin="auditft", plugin_version=__version__)
    base_value = None if base is None else float(not base.degenerate)
    if not_run is not None:
        return Check(value=None, status="insufficient", base_value=None, reason=f"not run: {not_run}", **common)
    if subject is None:
        return Check(value=None, status="error", base_value=base_value,
                     reason="core could not score the adapter on the test split", **common)
    return Check(value=float(not subject.degenerate), status="fail" if subject.degenerate else "pass",
                 base_value=base_value, reason=subject.summary(), n=subject.n, **common)


def effective_gates(spec: AuditSpec, entry: Entry | None) -> list[GateSpec]:
    """The suite's gates for this audit plus the audit's declared default gates."""
    return spec.gates_with_defaults(entry.default_gates if entry is not None else None)


def _not_run(spec: AuditSpec, gates: list[Any], status: str, reason: str) -> list[Check]:
    """Checks for an audit without a usable result: one per gate (or one if it has none)."""
    return [Check(audit=spec.kind, metric=gate.metric if gate else "(audit ran)",
                  value=None, ci_low=None, ci_high=None,
                  op=gate.op if gate else "min", threshold=gate.threshold if gate else None,
                  status=status, base_value=None, delta=None,
                  rationale=gate.rationale if gate else "a required audit must run", reason=reason)
            for gate in (gates or [None])]


def _check(kind: str, gate: GateSpec, result: AuditResult, min_n: int, *, sample_free: bool = False) -> Check:
    metric = result.metrics.get(gate.metric)
    common: dict[str, Any] = dict(audit=kind, metric=gate.metric, op=gate.op, threshold=gate.threshold,
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
    best = (high if gate.op == "min" else low) if has_ci else value
    if not meets(value) and has_ci and not meets(best):
        # the whole interval is on the failing side: more examples would not rescue it
        status, reason = "fail", (f"{value:.4g} misses {sign} {gate.threshold:g} and so does the whole 95% CI "
                                  f"({low:.4g}-{high:.4g})")
        if metric.n is not None and metric.n < floor:
            reason += f" (only {metric.n} examples, fewer than the {floor} a pass would need)"
    elif metric.n is not None and metric.n < floor:
        status, reason = "insufficient", f"only {metric.n} examples; this check needs at least {floor}"
    elif metric.n is None and not sample_free:
        # missing evidence is not evidence: a figure without a sample size cannot pass, whatever
        # the minimum (an audit declares a metric that has none by nature sample-free)
        status, reason = "insufficient", (f"the audit reported no sample size for {gate.metric}; a check on it "
                                          "needs one (an audit declares a metric without one sample-free at "
                                          "registration)")
    elif meets(bound):
        status = "pass"
        reason = (f"95% CI bound {bound:.4g} {sign} {gate.threshold:g}" if has_ci
                  else f"{value:.4g} {sign} {gate.threshold:g} (no CI)")
    elif not meets(value) and not has_ci:
        status, reason = "fail", f"{value:.4g} misses {sign} {gate.threshold:g} (no CI)"
    elif not meets(value):
        # the point estimate misses but the CI reaches the threshold: calling this ``fail`` would
        # be wrong about half the time for a model exactly at the threshold (benchmarks/validity.py)
        status, reason = "insufficient", (f"{value:.4g} misses {sign} {gate.threshold:g} but the 95% CI "
                                          f"({low:.4g}-{high:.4g}) reaches it: not enough evidence either way")
    else:
        status = "insufficient"
        reason = f"{value:.4g} meets {sign} {gate.threshold:g} but the 95% CI reaches {bound:.4g}"
    return Check(value=value, ci_low=low if has_ci else None, ci_high=high if has_ci else None,
                 status=status, base_value=metric.base_value, delta=metric.delta, reason=reason,
                 n=metric.n, details=dict(metric.details) if metric.details else None, **common)


def _powered(check: Check, gate: GateSpec) -> Check:
    """The power check on a gate over a proportion (``auditft.power``): with fewer items than
    the gate needs to pass a model ``margin`` better than its threshold, a check that is not
    already ``fail`` (or ``error``) is ``insufficient`` by design, naming the number."""
    from auditft.power import requirement

    need = requirement(gate)
    need["available"] = check.n
    need["powered"] = need["needed"] is not None and check.n is not None and check.n >= need["needed"]
    details = {**(check.details or {}), "power": need}
    if need["powered"] or check.status in ("fail", "error") or check.n is None:
        return replace(check, details=details)
    wanted = ("no sample size suffices (a perfect model cannot clear this threshold with a 95% CI)"
              if need["needed"] is None else f"needs at least {need['needed']} items")
    return replace(check, status="insufficient", details=details, reason=(
        f"underpowered by design: {check.n} items, and a gate {gate.op} {gate.threshold:g} {wanted} to pass a model "
        f"{need['margin']:g} better than its threshold (exact 95% bound; margin settable per gate) "
        f"(it would have been {check.status}: {check.reason})"))


#: a one-sided test at this level matches "the 95% CI's conservative bound clears the threshold"
ONE_SIDED_ALPHA = 0.025


def check_pvalue(check: Check) -> float | None:
    """One-sided p-value of "the metric misses its threshold", from the check's 95% CI by the
    normal approximation: se = (ci_high - ci_low) / (2 * 1.96), z = (value - threshold) / se
    (sign flipped for ``max``), p = 1 - Phi(z). None without a CI (such a check is outside the
    corrected family). A zero-width CI gives 0 when the value meets the threshold strictly."""
    import math

    if check.ci_low is None or check.ci_high is None or check.value is None or check.threshold is None:
        return None
    margin = (check.value - check.threshold) if check.op == "min" else (check.threshold - check.value)
    se = (check.ci_high - check.ci_low) / (2 * 1.959964)
    if se <= 0:
        return 0.0 if margin > 0 else 1.0
    return 0.5 * math.erfc((margin / se) / math.sqrt(2))


def holm_correct(checks: list[Check]) -> list[Check]:
    """Holm's step-down over the family of gated checks that have a CI (the core check and
    checks without a CI are outside it): each gets ``details["correction"]`` with its one-sided
    p-value (``check_pvalue``) and Holm-adjusted p-value; a ``pass`` whose adjusted p-value is
    above 0.025 becomes ``insufficient`` (it passes alone, not as one of m tests). Controls the
    chance that any check in the family passes a model that misses its threshold at 2.5%."""
    from auditft.stats import holm

    family = [(i, p) for i, c in enumerate(checks) if c.audit != CORE_AUDIT and (p := check_pvalue(c)) is not None]
    adjusted = holm([p for _, p in family])
    out = list(checks)
    for (i, p), adj in zip(family, adjusted):
        check = out[i]
        details = {**(check.details or {}), "correction": {"method": "holm", "family": len(family),
                                                           "p_value": p, "adjusted_p": adj,
                                                           "alpha": ONE_SIDED_ALPHA}}
        if check.status == "pass" and adj > ONE_SIDED_ALPHA:
            out[i] = replace(check, status="insufficient", details=details, reason=(
                f"passes alone ({check.reason}, one-sided p {p:.3g}) but not after Holm's correction across "
                f"{len(family)} gated checks (adjusted p {adj:.3g} > {ONE_SIDED_ALPHA})"))
        else:
            out[i] = replace(check, details=details)
    return out


def verdict(checks: list[Check]) -> str:
    """``passed`` only when there is at least one check and every check passed."""
    return "passed" if checks and all(c.status == "pass" for c in checks) else "blocked"


def ordered(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed, errored and insufficient checks first (the report's gate table order)."""
    return sorted(checks, key=lambda c: STATUS_ORDER.get(c["status"], 0))

