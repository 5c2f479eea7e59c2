"""``check_audit``: the contract core relies on from an audit plugin, exercised on toy data
against a fake model session or, with ``model="tiny"``, inside a complete ``auditft run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.conformance.common import (
    DEFAULT_TIMEOUT,
    PLANTED,
    RAW_MARKUP,
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
from auditft.conformance.contract import check_base_figures, check_produced, check_section_hooks, check_splits
from auditft.conformance.degenerate import check_constant_model
from auditft.conformance.fakes import FailingModelSession, FakeModelSession, SessionFactory, fake_job
from auditft.conformance.guards import guarded_run, no_exit, timed_out
from auditft.records import AuditResult, Metric, ReportSection, is_finite

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import BaseModel

    from auditft.jobs import AuditJob
    from auditft.plugins import PluginManager
    from auditft.registry import Entry


def check_audit_result(result: object, entry: Entry, name: str) -> AuditResult:
    """The result contract: an ``AuditResult`` of the right kind, only declared metrics, finite
    values, finite-or-None CIs in order that contain the value, JSON-serialisable evidence and notes."""
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
        if metric.ci_low is not None and metric.ci_high is not None:
            slack = 1e-9 * max(1.0, abs(metric.value))
            if not metric.ci_low - slack <= metric.value <= metric.ci_high + slack:
                raise PluginCheckError(f"{where}: its 95% CI [{metric.ci_low:.6g}, {metric.ci_high:.6g}] does not "
                                       f"contain its value {metric.value:.6g}; the gate judges the CI end, so it "
                                       "must be the interval of this figure")
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


def check_sections(pm: PluginManager, name: str, report: dict[str, Any], *, when: str = "") -> list[ReportSection]:
    """The plugin's ``auditft_report_sections`` (if any) return ``ReportSection``s that escape
    the markup the kit planted (model output, example texts, labels, group values, errors);
    ``when`` says what the report holds, for the message."""
    sections: list[ReportSection] = []
    suffix = f" {when}" if when else ""
    for impl in pm.hook.auditft_report_sections.get_hookimpls():
        if impl.plugin_name != name:
            continue
        try:
            # a hook implementation returns whatever the plugin wrote; checked item by item below
            produced: object = impl.function(report=report) or []
        except (Exception, SystemExit) as exc:
            raise PluginCheckError(f"plugin {name!r}: auditft_report_sections raised {type(exc).__name__}: {exc}"
                                   f"{suffix}; a section hook must return [] when it has nothing to show "
                                   "(auditft.report.audit_result(report, kind) is None then)") from exc
        if not isinstance(produced, (list, tuple)):
            raise PluginCheckError(f"plugin {name!r}: auditft_report_sections returned {type(produced).__name__}"
                                   f"{suffix}, not a list of ReportSection")
        for section in produced:
            if not isinstance(section, ReportSection):
                raise PluginCheckError(f"plugin {name!r}: auditft_report_sections returned "
                                       f"{type(section).__name__}{suffix}, not ReportSection")
            html = str(section.html)
            if any(raw in html for raw in RAW_MARKUP):
                found = [what for marker, what in PLANTED.items() if marker in html] or ["markup the kit planted"]
                raise PluginCheckError(f"plugin {name!r}: report section {section.title!r} contains "
                                       f"{' and '.join(found)} unescaped{suffix}; build it with "
                                       "auditft.report.render_fragment (autoescaped), never with f-strings "
                                       "or |safe on data")
            sections.append(section)
    return sections


def check_audit(plugin: object, kind: str, *, task: str | None = None, options: dict[str, Any] | None = None,
                name: str | None = None, model: str = "fake", tmp_dir: Path | None = None,
                timeout: float | None = DEFAULT_TIMEOUT, base_figures: bool = True,
                optional_metrics: Iterable[str] = (), scores_train: bool = False) -> AuditResult:
    """Check that ``plugin`` (a module or object with hook implementations) provides a working
    audit ``kind``:

    1. it registers on an isolated manager without misspelled hooks or duplicate kinds;
    2. its options model rejects unknown keys and accepts ``options`` (default ``{}``), and its
       factory returns an ``auditft.protocols.Audit`` (an object with a ``run`` method);
    3. it runs on toy data for ``task`` (default: its first declared task), then for each other
       task it declares, through core's error isolation under ``timeout`` seconds (default
       600; ``None``: no limit), against a fake model session (``model="fake"``, instant) or a
       real LoRA adapter on the tiny random model (``model="tiny"``: a whole ``auditft run``,
       seconds; what an audit that retrains through ``job.retrain`` needs, as the fakes have no
       tuner). ``sys.exit`` or a ``KeyboardInterrupt`` raised by the audit fails the check;
    4. each result is an ``AuditResult`` whose metrics are all declared, finite, with finite or
       ``None`` CIs that contain the value, and whose evidence survives JSON; every declared
       metric appears on at least one task (``optional_metrics``: those that only other options
       or data produce, e.g. metrics an option turns on); a model-stage audit gives a base-model figure
       (some metric's ``base_value``; ``base_figures=False`` for an audit that has none by
       nature) and, on the fake session, scores the test split, not only train or validation
       (``scores_train=True`` for an audit that measures the training rows on purpose, such as
       memorisation or canary extraction);
    5. its report sections escape the markup planted in the fake model's answers and in the toy
       data (example texts, label names, group values), and its section hook returns ``[]`` or
       sections, never raises, when the audit is absent from the report or has an error;
    6. a model that raises makes the audit an ``error`` result (not a crash, not a clean result);
    7. model-stage audits: no check it produces can pass on a constant model (the first label
       for every row; ``"unknown"`` to every prompt). Each metric is gated at the value the
       working fake model scores; a check that the constant model still passes there is a
       metric it satisfies trivially, which ``register.add(trivial_metrics=...)`` must declare
       (core then fails such checks whenever it finds a model behind them degenerate). A metric
       the working fake does not exercise on the toy data (the constant's value, zero-width CI)
       is skipped: the check is only as sharp as the fake. With ``model="tiny"``, an audit the
       fake session cannot serve (one that retrains through ``job.retrain``) skips this step.

    Returns the result of step 3 for ``task``. Raises ``PluginCheckError`` naming the plugin otherwise.
    """
    name = name or plugin_name(plugin)
    pm = manager_with(plugin, name)
    entry = registered_entry(pm, "audit", name, kind)
    task = checked_task(entry, name, "audit", task)
    if not entry.metrics:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} declares no gate metrics; pass "
                               "register.add(..., metrics={'name': 'higher' | 'lower'})")
    if model not in ("fake", "tiny"):
        raise ValueError(f"model must be 'fake' or 'tiny', not {model!r}")
    with workdir(tmp_dir) as work:
        opts = validated_options(entry, name, "audit", options, work)
        _check_audit_object(entry, opts, name)
        run = _Exercise(pm, name, entry, opts, options or {}, work, model, timeout, base_figures, scores_train)
        results = {each: run.task(each, main=each == task) for each in [task, *(t for t in entry.tasks if t != task)]}
        check_produced(results, entry, name, optional_metrics)
        result = results[task]
        failing = fake_job(task, opts, work / f"failing-{task}", lambda data, seed: FailingModelSession())
        failed = guarded_run(entry, failing, name=name, timeout=timeout)
        error = getattr(failed, "error", None)
        called = int(getattr(failing.models, "calls", 0)) > 0  # an audit that never calls it swallows nothing
        if error is None and called:
            raise PluginCheckError(f"plugin {name!r}: audit {kind!r} swallowed a model failure and returned a "
                                   "result without error; let exceptions propagate, core records them")
        if error is not None and name not in error:
            raise PluginCheckError(f"plugin {name!r}: the error result does not name the plugin: {error}")
        if entry.stage == "model":
            # with model="tiny", an audit the fakes cannot serve (one that retrains) skips this step
            reference = result if model == "fake" else run.fake(task)[0]
            if getattr(reference, "error", None) is None:
                check_constant_model(entry, name, task, opts, work, reference, timeout=timeout)
    return result


class _Exercise:
    """Step 3 to 5 of ``check_audit`` for one task: the run, its result, its sections."""

    def __init__(self, pm: PluginManager, name: str, entry: Entry, opts: BaseModel, options: dict[str, Any],
                 work: Path, model: str, timeout: float | None, base_figures: bool, scores_train: bool) -> None:
        self.pm, self.name, self.entry, self.opts, self.options = pm, name, entry, opts, options
        self.work, self.model, self.timeout, self.base_figures = work, model, timeout, base_figures
        self.scores_train = scores_train

    def fake(self, task: str) -> tuple[AuditResult, AuditJob]:
        job = fake_job(task, self.opts, self.work / f"fake-{task}", FakeModelSession)
        return guarded_run(self.entry, job, name=self.name, timeout=self.timeout), job

    def task(self, task: str, *, main: bool) -> AuditResult:
        entry, name = self.entry, self.name
        try:
            if self.model == "tiny":
                result, report = _run_tiny(self.pm, name, entry, task, self.options, self.work, self.timeout)
                check_audit_result(result, entry, name)
                scored = None
            else:
                result, job = self.fake(task)
                check_audit_result(result, entry, name)
                report = {"task": task, "labels": list(job.data.labels), "group_columns": list(job.data.group_columns),
                          "audits": {entry.kind: result.to_dict()}, "checks": [], "verdict": "passed",
                          "state": "awaiting_review"}
                scored = getattr(job.models, "scored", None)
                check_sections(self.pm, name, report)
            check_section_hooks(lambda r, when: check_sections(self.pm, name, r, when=when), report, entry, name)
            if self.base_figures:
                check_base_figures(result, entry, name, task)
            if scored is not None and not self.scores_train:
                check_splits(scored, entry, name)
        except PluginCheckError as exc:
            if main:
                raise
            raise PluginCheckError(f"{exc} (on the {task} task, which the audit declares too)") from None
        return result


def _check_audit_object(entry: Entry, opts: BaseModel, name: str) -> None:
    """What the registered factory returns must be an ``auditft.protocols.Audit``."""
    from auditft.protocols import Audit

    try:
        with no_exit(name, "audit", entry.kind, step="its factory"):
            audit = entry.factory(opts)
    except Exception:  # a factory that raises is reported by the run, as core reports it
        return
    require_protocol(audit, Audit, name=name, what="audit", kind=entry.kind)


def run_fake(entry: Entry, task: str, opts: BaseModel, work: Path, session_factory: SessionFactory) -> AuditResult:
    """The audit run through core's error isolation on toy data, against ``session_factory``'s session."""
    from auditft.isolation import run_audit

    return run_audit(entry, fake_job(task, opts, work / f"fake-{task}", session_factory), strict=True)


def _run_tiny(pm: PluginManager, name: str, entry: Entry, task: str, options: dict[str, Any],
              work: Path, timeout: float | None) -> tuple[AuditResult, dict[str, Any]]:
    """The audit inside a complete ``auditft run`` of a LoRA adapter on the tiny random model
    (the audit's ``timeout`` in the suite); the result and the report."""
    import math

    from auditft.plan import prepare
    from auditft.run import execute

    directory = work / f"tiny-{task}"
    directory.mkdir(exist_ok=True)
    lora = {"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0}}
    spec: dict[str, Any] = {"kind": entry.kind, "options": options}
    if timeout:
        spec["timeout"] = f"{max(1, math.ceil(timeout))}s"
    suite = toy_suite(directory, task, tiny_model(task), lora, [spec])
    with no_exit(name, "audit", entry.kind):
        report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="auditft-check")
    run_dir = directory / "reports" / report["run_id"]
    result = AuditResult.from_dict(report["audits"][entry.kind])
    timed_out(result, name, "audit", entry.kind, timeout)
    if not result.error:
        html = (run_dir / "report.html").read_text(encoding="utf-8")
        for section in check_sections(pm, name, report):
            if section.title not in html:
                raise PluginCheckError(f"plugin {name!r}: section {section.title!r} is missing from report.html")
    return result, report
