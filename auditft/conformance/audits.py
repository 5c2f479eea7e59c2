"""``check_audit``: the contract core relies on from an audit plugin, exercised on toy data
against a fake model session or, with ``model="tiny"``, inside a complete ``auditft run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from auditft.conformance.common import (
    HOSTILE,
    PluginCheckError,
    checked_task,
    manager_with,
    plugin_name,
    registered_entry,
    require_protocol,
    tiny_model,
    toy_suite,
    validated_options,
    workdir,
)
from auditft.conformance.degenerate import check_constant_model
from auditft.conformance.fakes import FailingModelSession, FakeModelSession, SessionFactory, fake_job
from auditft.records import AuditResult, Metric, ReportSection, is_finite

if TYPE_CHECKING:
    from pydantic import BaseModel

    from auditft.plugins import PluginManager
    from auditft.registry import Entry


def check_audit_result(result: object, entry: Entry, name: str) -> AuditResult:
    """The result contract: an ``AuditResult`` of the right kind, only declared metrics, finite
    values, finite-or-None CIs in order, JSON-serialisable evidence and notes."""
    kind = entry.kind
    if not isinstance(result, AuditResult):
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} returned {type(result).__name__}, not AuditResult")
    if result.error:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} failed: {result.error}")
    if result.kind != kind:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} returned a result of kind {result.kind!r}")
    if not result.metrics:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} produced no metrics, so every gate on it "
                               "would be an error")
    for metric_name, metric in result.metrics.items():
        where = f"plugin {name!r}: audit {kind!r} metric {metric_name!r}"
        if metric_name not in entry.metrics:
            raise PluginCheckError(f"{where} is not declared in register.add(metrics=...) "
                                   f"(declared: {sorted(entry.metrics)})")
        if not isinstance(metric, Metric):
            raise PluginCheckError(f"{where} is a {type(metric).__name__}, not auditft.records.Metric")
        if not is_finite(metric.value):
            raise PluginCheckError(f"{where} has the non-finite value {metric.value!r}; leave a metric out "
                                   "when it cannot be measured")
        for attr in ("ci_low", "ci_high", "base_value"):
            value = getattr(metric, attr)
            if value is not None and not is_finite(value):
                raise PluginCheckError(f"{where}: {attr} is {value!r}; use a finite number or None")
        if metric.ci_low is not None and metric.ci_high is not None and metric.ci_low > metric.ci_high:
            raise PluginCheckError(f"{where}: ci_low {metric.ci_low} is above ci_high {metric.ci_high}")
        if (metric.ci_low is None) != (metric.ci_high is None):
            raise PluginCheckError(f"{where}: give both CI ends or neither")
        if metric.n is not None and (not isinstance(metric.n, int) or metric.n < 0):
            raise PluginCheckError(f"{where}: n is {metric.n!r}; use a non-negative int or None")
    for rows_name, rows in result.rows.items():
        if not (isinstance(rows_name, str) and rows_name.endswith("_rows") and rows_name.isidentifier()):
            raise PluginCheckError(f"plugin {name!r}: audit {kind!r} rows name {rows_name!r} must be an "
                                   "identifier ending in '_rows'")
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in rows):
            raise PluginCheckError(f"plugin {name!r}: audit {kind!r} {rows_name} must be 0-based row numbers")
    if not all(isinstance(note, str) for note in result.notes):
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} notes must be strings")
    try:
        encoded = json.dumps(result.to_dict())
    except (TypeError, ValueError) as exc:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} evidence is not JSON-serialisable: {exc}") from exc
    if AuditResult.from_dict(json.loads(encoded)).to_dict() != json.loads(encoded):
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} result does not survive a JSON round trip")
    return result


def check_sections(pm: PluginManager, name: str, report: dict[str, Any]) -> list[ReportSection]:
    """The plugin's ``auditft_report_sections`` (if any) return escaped ``ReportSection``s."""
    sections: list[ReportSection] = []
    for impl in pm.hook.auditft_report_sections.get_hookimpls():
        if impl.plugin_name != name:
            continue
        try:
            # a hook implementation returns whatever the plugin wrote; checked item by item below
            produced = cast("list[object] | None", impl.function(report=report)) or []
        except Exception as exc:
            raise PluginCheckError(f"plugin {name!r}: auditft_report_sections raised {type(exc).__name__}: {exc}") from exc
        for section in produced:
            if not isinstance(section, ReportSection):
                raise PluginCheckError(f"plugin {name!r}: auditft_report_sections returned "
                                       f"{type(section).__name__}, not ReportSection")
            if HOSTILE in str(section.html):
                raise PluginCheckError(f"plugin {name!r}: report section {section.title!r} contains model output "
                                       "unescaped; build it with auditft.report.render_fragment")
            sections.append(section)
    return sections


def check_audit(plugin: object, kind: str, *, task: str | None = None, options: dict[str, Any] | None = None,
                name: str | None = None, model: str = "fake", tmp_dir: Path | None = None) -> AuditResult:
    """Check that ``plugin`` (a module or object with hook implementations) provides a working
    audit ``kind``:

    1. it registers on an isolated manager without misspelled hooks or duplicate kinds;
    2. its options model rejects unknown keys and accepts ``options`` (default ``{}``), and its
       factory returns an ``auditft.protocols.Audit`` (an object with a ``run`` method);
    3. it runs on toy data for ``task`` (default: its first declared task), through core's own
       error isolation, against a fake model session (``model="fake"``, instant) or a real
       LoRA adapter on the tiny random model (``model="tiny"``: a whole ``auditft run``, seconds;
       what an audit that retrains through ``job.retrain`` needs, as the fakes have no tuner);
    4. the result is an ``AuditResult`` whose metrics are all declared, finite, with finite or
       ``None`` CIs, and whose evidence survives JSON;
    5. its report sections render and escape model output;
    6. a model that raises makes the audit an ``error`` result (not a crash, not a clean result);
    7. model-stage audits: no check it produces can pass on a constant model (the first label
       for every row; ``"unknown"`` to every prompt). Each metric is gated at the value the
       working fake model scores; a check that the constant model still passes there is a
       metric it satisfies trivially, which ``register.add(trivial_metrics=...)`` must declare
       (core then fails such checks whenever it finds a model behind them degenerate). A metric
       the working fake does not exercise on the toy data (the constant's value, zero-width CI)
       is skipped: the check is only as sharp as the fake.

    Returns the result of step 3. Raises ``PluginCheckError`` naming the plugin otherwise.
    """
    name = name or plugin_name(plugin)
    pm = manager_with(plugin, name)
    entry = registered_entry(pm, "audit", name, kind)
    task = checked_task(entry, name, "audit", task)
    if not entry.metrics:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} declares no gate metrics; pass "
                               "register.add(..., metrics={'name': 'higher' | 'lower'})")
    with workdir(tmp_dir) as work:
        opts = validated_options(entry, name, "audit", options, work)
        _check_audit_object(entry, opts, name)
        if model == "tiny":
            result = _run_tiny(pm, name, entry, task, options or {}, work)
        elif model == "fake":
            result = run_fake(entry, task, opts, work, FakeModelSession)
        else:
            raise ValueError(f"model must be 'fake' or 'tiny', not {model!r}")
        check_audit_result(result, entry, name)
        report = {"audits": {kind: result.to_dict()}, "checks": [], "verdict": "passed", "state": "awaiting_review"}
        check_sections(pm, name, report)
        failed = run_fake(entry, task, opts, work, lambda data, seed: FailingModelSession())
        if failed.error is None:
            raise PluginCheckError(f"plugin {name!r}: audit {kind!r} swallowed a model failure and returned a "
                                   "result without error; let exceptions propagate, core records them")
        if name not in failed.error:
            raise PluginCheckError(f"plugin {name!r}: the error result does not name the plugin: {failed.error}")
        if entry.stage == "model":
            reference = result if model == "fake" else run_fake(entry, task, opts, work, FakeModelSession)
            check_constant_model(entry, name, task, opts, work, reference)
    return result


def _check_audit_object(entry: Entry, opts: BaseModel, name: str) -> None:
    """What the registered factory returns must be an ``auditft.protocols.Audit``."""
    from auditft.protocols import Audit

    try:
        audit = entry.factory(opts)
    except Exception:  # a factory that raises is reported by the run, as core reports it
        return
    require_protocol(audit, Audit, name=name, what="audit", kind=entry.kind)


def run_fake(entry: Entry, task: str, opts: BaseModel, work: Path, session_factory: SessionFactory) -> AuditResult:
    """The audit run through core's error isolation on toy data, against ``session_factory``'s session."""
    from auditft.isolation import run_audit

    return run_audit(entry, fake_job(task, opts, work / f"fake-{task}", session_factory), strict=True)


def _run_tiny(pm: PluginManager, name: str, entry: Entry, task: str, options: dict[str, Any],
              work: Path) -> AuditResult:
    """The audit inside a complete ``auditft run`` of a LoRA adapter on the tiny random model."""
    from auditft.plan import prepare
    from auditft.run import execute

    directory = work / f"tiny-{task}"
    directory.mkdir(exist_ok=True)
    lora = {"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0}}
    suite = toy_suite(directory, task, tiny_model(task), lora, [{"kind": entry.kind, "options": options}])
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="auditft-check")
    run_dir = directory / "reports" / report["run_id"]
    result = AuditResult.from_dict(report["audits"][entry.kind])
    if not result.error:
        html = (run_dir / "report.html").read_text(encoding="utf-8")
        for section in check_sections(pm, name, report):
            if section.title not in html:
                raise PluginCheckError(f"plugin {name!r}: section {section.title!r} is missing from report.html")
    return result
