"""Conformance checks a plugin author calls from their own tests (re-exported by ``auditft.testing``).

``check_audit(plugin, kind)`` and ``check_tuner(plugin, kind)`` register the plugin on an
isolated plugin manager (built-ins only, no entry points, no environment) and exercise the
contract core relies on. Every failure raises ``PluginCheckError`` (an ``AssertionError``, so
pytest shows it as a plain test failure) whose message names the plugin and what it did
wrong.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditft.errors import PluginError
from auditft.records import AuditResult, Metric, ReportSection, TuneResult, is_finite

#: a key no plugin's options model should accept
UNKNOWN_OPTION = "auditft_conformance_unknown_key"
#: planted in the fake model's answers: a report section must escape it
HOSTILE = "<script>alert('auditft-check')</script>"
#: file suffixes of pickled weights, which auditft never loads
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
INJECTED = "injected model failure (auditft.testing.check_audit)"
#: what the constant model answers to every prompt (an abstention, as the toy task spells it)
CONSTANT_ANSWER = "unknown"


class PluginCheckError(AssertionError):
    """A plugin broke the auditft plugin contract; the message says which plugin and how."""


def _name_of(plugin: Any) -> str:
    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    return str(name)


@contextmanager
def _workdir(tmp_dir: Path | None) -> Iterator[Path]:
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        yield Path(tmp_dir)
        return
    path = Path(tempfile.mkdtemp(prefix="auditft-check-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _manager_with(plugin: Any, name: str) -> Any:
    """An isolated manager with ``plugin`` registered; hook signature errors and misspelled hooks
    are reported as plugin errors, exactly as ``--strict-plugins`` would."""
    import pluggy

    from auditft.plugins import _drop_unknown_hooks
    from auditft.testing import isolated_plugin_manager

    pm = isolated_plugin_manager()
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:  # pluggy: name already registered
        raise PluginCheckError(f"plugin {name!r} could not be registered: {exc}") from exc
    except pluggy.PluginValidationError as exc:
        raise PluginCheckError(f"plugin {name!r} has an invalid hook implementation: {exc}") from exc
    try:
        _drop_unknown_hooks(pm, strict=True)
    except PluginError as exc:
        raise PluginCheckError(str(exc)) from exc
    return pm


def _entry(pm: Any, what: str, name: str, kind: str) -> Any:
    try:
        registry = pm.audits if what == "audit" else pm.tuners
    except PluginError as exc:
        raise PluginCheckError(str(exc)) from exc
    entry = registry.get(kind)
    if entry is None:
        mine = [e.kind for e in registry if e.plugin == name]
        raise PluginCheckError(f"plugin {name!r} did not register {what} {kind!r} "
                               f"(it registered {mine or 'no ' + what + 's'})")
    if entry.plugin != name:
        raise PluginCheckError(f"{what} {kind!r} belongs to plugin {entry.plugin!r}, not {name!r}")
    return entry


def _options(entry: Any, name: str, what: str, options: dict[str, Any] | None, suite_dir: Path) -> Any:
    from pydantic import ValidationError

    from auditft.suite import plugin_options

    try:
        plugin_options(entry.options, {UNKNOWN_OPTION: 1}, suite_dir)
    except ValidationError:
        pass
    else:
        raise PluginCheckError(
            f"plugin {name!r}: options of {what} {entry.kind!r} accept the unknown key {UNKNOWN_OPTION!r}; "
            "set model_config = ConfigDict(extra='forbid') on the options model")
    try:
        return plugin_options(entry.options, options or {}, suite_dir)
    except ValidationError as exc:
        raise PluginCheckError(f"plugin {name!r}: {what} {entry.kind!r} rejects the options {options or {}}: "
                               f"{' '.join(str(exc).split())[:400]}") from exc


def _task(entry: Any, name: str, what: str, task: str | None) -> str:
    task = task or entry.tasks[0]
    if task not in entry.tasks:
        raise PluginCheckError(f"plugin {name!r}: {what} {entry.kind!r} declares tasks {list(entry.tasks)}, "
                               f"not {task!r}")
    return task


# -- audits ---------------------------------------------------------------------------------------


class FakeModelSession:
    """Stands in for ``auditft.inference.ModelSession``: deterministic answers and probabilities,
    no model. Generated answers include ``HOSTILE`` markup, which report sections must escape."""

    def __init__(self, data: Any, seed: int = 0) -> None:
        self.data = data
        self.seed = seed

    def _split(self, split: str) -> list[Any]:
        return list(getattr(self.data, split))

    def _proba(self, split: str, shift: int) -> Any:
        import numpy as np

        rows = self._split(split)
        k = max(len(self.data.labels), 2)
        rng = np.random.default_rng(self.seed + shift)
        proba = rng.dirichlet(np.ones(k), size=len(rows))
        for i, ex in enumerate(rows):  # mostly right, so metrics are neither 0 nor 1
            if ex.label is not None and i % 3:
                proba[i] = proba[i] * 0.2
                proba[i, ex.label] += 0.8
        return proba

    def adapter_proba(self, split: str) -> Any:
        return self._proba(split, 0)

    def base_probe_proba(self, split: str) -> Any:
        return self._proba(split, 1)

    def base_embeddings(self, split: str) -> Any:
        import numpy as np

        return np.random.default_rng(self.seed).normal(size=(len(self._split(split)), 8))

    def _answer(self, prompt: str, which: str, i: int) -> str:
        reference = {ex.text: ex.response for ex in self.data.test if ex.response}.get(prompt)
        if i % 4 == 0:  # the first answer of every call, so any example shown carries it
            return f"{HOSTILE} {prompt}"
        if reference and (which == "adapter" or i % 2):
            return reference
        return "unknown"

    def generate(self, prompts: list[str], *, which: str = "adapter", max_new_tokens: int | None = None) -> list[str]:
        return [self._answer(p, which, i) for i, p in enumerate(prompts)]

    def sample(self, prompts: list[str], *, which: str = "adapter", n: int = 5, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> list[list[str]]:
        return [[self._answer(p, which, i + j) for j in range(n)] for i, p in enumerate(prompts)]


class ConstantModelSession(FakeModelSession):
    """A model that does nothing: the adapter predicts the first label for every row and answers
    every prompt with ``CONSTANT_ANSWER``; the base model is ``FakeModelSession``'s."""

    def adapter_proba(self, split: str) -> Any:
        import numpy as np

        proba = np.zeros((len(self._split(split)), max(len(self.data.labels), 2)))
        proba[:, 0] = 1.0
        return proba

    def generate(self, prompts: list[str], *, which: str = "adapter", max_new_tokens: int | None = None) -> list[str]:
        if which != "adapter":
            return super().generate(prompts, which=which, max_new_tokens=max_new_tokens)
        return [CONSTANT_ANSWER for _ in prompts]

    def sample(self, prompts: list[str], *, which: str = "adapter", n: int = 5, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> list[list[str]]:
        if which != "adapter":
            return super().sample(prompts, which=which, n=n, temperature=temperature, max_new_tokens=max_new_tokens)
        return [[CONSTANT_ANSWER] * n for _ in prompts]


class FailingModelSession:
    """Every model call raises: an audit must let that surface as an ``error`` result."""

    def __getattr__(self, attr: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(INJECTED)

        return fail


def _toy_suite(directory: Path, task: str, model_dir: Path | str, tuner: dict[str, Any],
               audits: list[dict[str, Any]]) -> Path:
    from auditft.testing import toy_classification_data, toy_generation_data, write_suite

    training = {"epochs": 1, "learning_rate": 0.02, "batch_size": 8, "max_length": 32, "eval_batch_size": 32,
                "logging_steps": 5}
    tuner = {"training": training, **tuner}
    if task == "generation":
        toy_generation_data(directory, copies=2)
        data = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7,
                "group_columns": ["group"]}
        return write_suite(directory / "suite.yaml", model_dir=model_dir, task="generation", data=data,
                           tuner=tuner, audits=audits, generation={"max_new_tokens": 4})
    toy_classification_data(directory, n_train=80, n_test=60)
    return write_suite(directory / "suite.yaml", model_dir=model_dir, tuner=tuner, audits=audits)


def check_audit_result(result: Any, entry: Any, name: str) -> AuditResult:
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


def check_sections(pm: Any, name: str, report: dict[str, Any]) -> list[ReportSection]:
    """The plugin's ``auditft_report_sections`` (if any) return escaped ``ReportSection``s."""
    sections: list[ReportSection] = []
    for impl in pm.hook.auditft_report_sections.get_hookimpls():
        if impl.plugin_name != name:
            continue
        try:
            produced = impl.function(report=report) or []
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


def check_audit(plugin: Any, kind: str, *, task: str | None = None, options: dict[str, Any] | None = None,
                name: str | None = None, model: str = "fake", tmp_dir: Path | None = None) -> AuditResult:
    """Check that ``plugin`` (a module or object with hook implementations) provides a working
    audit ``kind``:

    1. it registers on an isolated manager without misspelled hooks or duplicate kinds;
    2. its options model rejects unknown keys and accepts ``options`` (default ``{}``);
    3. it runs on toy data for ``task`` (default: its first declared task), through core's own
       error isolation, against a fake model session (``model="fake"``, instant) or a real
       LoRA adapter on the tiny random model (``model="tiny"``: a whole ``auditft run``, seconds);
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
    name = name or _name_of(plugin)
    pm = _manager_with(plugin, name)
    entry = _entry(pm, "audit", name, kind)
    task = _task(entry, name, "audit", task)
    if not entry.metrics:
        raise PluginCheckError(f"plugin {name!r}: audit {kind!r} declares no gate metrics; pass "
                               "register.add(..., metrics={'name': 'higher' | 'lower'})")
    with _workdir(tmp_dir) as work:
        opts = _options(entry, name, "audit", options, work)
        if model == "tiny":
            result = _run_tiny(pm, name, entry, task, options or {}, work)
        elif model == "fake":
            result = _run_fake(entry, task, opts, work, FakeModelSession)
        else:
            raise ValueError(f"model must be 'fake' or 'tiny', not {model!r}")
        check_audit_result(result, entry, name)
        report = {"audits": {kind: result.to_dict()}, "checks": [], "verdict": "passed", "state": "awaiting_review"}
        check_sections(pm, name, report)
        failed = _run_fake(entry, task, opts, work, lambda data, seed: FailingModelSession())
        if failed.error is None:
            raise PluginCheckError(f"plugin {name!r}: audit {kind!r} swallowed a model failure and returned a "
                                   "result without error; let exceptions propagate, core records them")
        if name not in failed.error:
            raise PluginCheckError(f"plugin {name!r}: the error result does not name the plugin: {failed.error}")
        if entry.stage == "model":
            reference = result if model == "fake" else _run_fake(entry, task, opts, work, FakeModelSession)
            check_constant_model(entry, name, task, opts, work, reference)
    return result


def check_constant_model(entry: Any, name: str, task: str, opts: Any, work: Path, reference: AuditResult) -> None:
    """Step 7 of ``check_audit``: gate every metric at the working model's value (``reference``)
    and run the audit on ``ConstantModelSession`` through core's degeneracy recording; any check
    that passes means the audit lets a model that does nothing through."""
    from dataclasses import replace

    from auditft import gate
    from auditft.degeneracy import ObservedSession, Recorder, classification_profile
    from auditft.run import _profiled
    from auditft.suite import AuditSpec

    holder: dict[str, Any] = {}

    def observed(data: Any, seed: int) -> Any:
        holder["session"] = ObservedSession(ConstantModelSession(data, seed), Recorder(list(data.labels), seed))
        holder["data"] = data
        return holder["session"]

    constant = _profiled_fake(entry, task, opts, work, observed, holder, _profiled)
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
        bound = "min" if entry.metrics[metric_name] == "higher" else "max"
        gates.append({"metric": metric_name, bound: float(ref.value), "rationale": "conformance: the working model's value"})
    data = holder["data"]
    subject = None
    if task == "classification" and data.test:
        subject = classification_profile("adapter", [ex.label for ex in data.test], [0] * len(data.test),
                                         list(data.labels))
    # too few toy rows must not hide a trivial pass: judge as if every floor were met
    metrics = {k: replace(m, min_n=0) for k, m in constant.metrics.items()}
    spec = AuditSpec(kind=entry.kind, gates=gates, default_gates=False)
    checks = gate.decide_specs([spec], {entry.kind: replace(constant, metrics=metrics)}, _Floorless(entry),
                               subject=subject)
    passed = [c for c in checks if c.status == "pass"]
    if passed:
        listed = ", ".join(f"{c.metric} ({c.value:.3g} {'>=' if c.op == 'min' else '<='} {c.threshold:.3g})"
                           for c in passed)
        raise PluginCheckError(
            f"plugin {name!r}: audit {entry.kind!r} lets a constant model pass checks set at a working model's "
            f"value: {listed}; declare these metrics in register.add(trivial_metrics=...) so core fails them "
            "on a degenerate model, or measure something a model that does nothing cannot satisfy")


class _Floorless:
    """The audit registry as the gate sees it, with the evidence floor at 0 (``check_constant_model``)."""

    def __init__(self, entry: Any) -> None:
        from dataclasses import replace

        # no evidence floor and no power check: toy data must not hide a trivial pass
        self.entry = replace(entry, min_n=0, proportion_metrics=frozenset())

    def get(self, kind: str) -> Any:
        return self.entry if kind == self.entry.kind else None


def _profiled_fake(entry: Any, task: str, opts: Any, work: Path, factory: Any, holder: dict[str, Any],
                   profiled: Any) -> AuditResult:
    """``_run_fake`` with core's degeneracy recording around the audit, as in a real run."""
    from auditft.data import load_data
    from auditft.jobs import AuditJob
    from auditft.run import _run_audit
    from auditft.suite import load_suite

    directory = work / f"constant-{task}"
    directory.mkdir(exist_ok=True)
    suite = load_suite(_toy_suite(directory, task, "model", {"kind": "lora"}, [{"kind": "accuracy"}]))
    data = load_data(suite)
    session = factory(data, suite.seed)
    job = AuditJob(suite=suite, task=task, data=data, options=opts, seed=suite.seed, models=session,
                   work_dir=directory / "work")
    job.work_dir.mkdir(exist_ok=True)
    return profiled(session, entry.kind, lambda: _run_audit(entry, job, strict=True))


def _run_fake(entry: Any, task: str, opts: Any, work: Path, session_factory: Any) -> AuditResult:
    from auditft.data import load_data
    from auditft.jobs import AuditJob
    from auditft.run import _run_audit
    from auditft.suite import load_suite

    directory = work / f"fake-{task}"
    directory.mkdir(exist_ok=True)
    suite = load_suite(_toy_suite(directory, task, "model", {"kind": "lora"}, [{"kind": "accuracy"}]))
    data = load_data(suite)
    job = AuditJob(suite=suite, task=task, data=data, options=opts, seed=suite.seed,
                   models=session_factory(data, suite.seed), work_dir=directory / "work")
    job.work_dir.mkdir(exist_ok=True)
    return _run_audit(entry, job, strict=True)


_TINY: dict[str, Path] = {}


def tiny_model(task: str) -> Path:
    """The tiny random model for ``task``, built once per process in a temporary directory."""
    from auditft.testing import tiny_causal_lm, tiny_classifier

    if task not in _TINY or not _TINY[task].exists():
        root = Path(tempfile.mkdtemp(prefix="auditft-tiny-"))
        _TINY[task] = (tiny_causal_lm if task == "generation" else tiny_classifier)(root / "model")
    return _TINY[task]


def _run_tiny(pm: Any, name: str, entry: Any, task: str, options: dict[str, Any], work: Path) -> AuditResult:
    from auditft.run import execute, prepare

    directory = work / f"tiny-{task}"
    directory.mkdir(exist_ok=True)
    lora = {"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0}}
    suite = _toy_suite(directory, task, tiny_model(task), lora, [{"kind": entry.kind, "options": options}])
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="auditft-check")
    run_dir = directory / "reports" / report["run_id"]
    result = AuditResult.from_dict(report["audits"][entry.kind])
    if not result.error:
        html = (run_dir / "report.html").read_text(encoding="utf-8")
        for section in check_sections(pm, name, report):
            if section.title not in html:
                raise PluginCheckError(f"plugin {name!r}: section {section.title!r} is missing from report.html")
    return result


# -- tuners ---------------------------------------------------------------------------------------


def check_tuner(plugin: Any, kind: str, *, task: str | None = None, options: dict[str, Any] | None = None,
                name: str | None = None, training: dict[str, Any] | None = None, require_safetensors: bool = True,
                tmp_dir: Path | None = None) -> TuneResult:
    """Check that ``plugin`` provides a working tuner ``kind``: it registers cleanly, its options
    reject unknown keys, ``tune`` on the tiny random model (1 epoch of toy data) returns a
    ``TuneResult`` and writes safetensors (never pickles) into ``adapter_dir``, and ``load``
    gives a model whose predictions (classification) or answers (generation) core can use."""
    from auditft.inference import ModelSession
    from auditft.jobs import TuneJob
    from auditft.run import _seed_everything, prepare

    name = name or _name_of(plugin)
    pm = _manager_with(plugin, name)
    entry = _entry(pm, "tuner", name, kind)
    task = _task(entry, name, "tuner", task)
    with _workdir(tmp_dir) as work:
        _options(entry, name, "tuner", options, work)
        tuner_spec: dict[str, Any] = {"kind": kind, "options": options or {}}
        if training:
            tuner_spec["training"] = {"epochs": 1, "learning_rate": 0.02, "batch_size": 8, "max_length": 32,
                                      "eval_batch_size": 32, "logging_steps": 5, **training}
        suite_path = _toy_suite(work, task, tiny_model(task), tuner_spec, [{"kind": "accuracy"}])
        prepared = prepare(suite_path, pm)
        adapter_dir, work_dir = work / "adapter", work / "work"
        adapter_dir.mkdir()
        work_dir.mkdir()
        tuner = entry.factory(prepared.tuner_options)
        _seed_everything(prepared.suite.seed)
        training_spec = prepared.suite.tuner.training
        try:
            result = tuner.tune(TuneJob(suite=prepared.suite, task=task, base=prepared.base, data=prepared.data,
                                        training=training_spec, options=prepared.tuner_options,
                                        seed=prepared.suite.seed, adapter_dir=adapter_dir, work_dir=work_dir))
        except Exception as exc:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} failed on the tiny model: "
                                   f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(result, TuneResult):
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} returned {type(result).__name__}, not TuneResult")
        if not (isinstance(result.trainable_parameters, int) and result.trainable_parameters > 0):
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} reports {result.trainable_parameters!r} "
                                   "trainable parameters")
        if result.total_parameters < result.trainable_parameters:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} reports fewer total than trainable parameters")
        if not all(is_finite(loss) for _, loss in result.loss_curve):
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} loss curve has non-finite values")
        try:
            json.dumps(result.to_dict())
        except (TypeError, ValueError) as exc:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} facts are not JSON-serialisable: {exc}") from exc
        files = [p for p in adapter_dir.rglob("*") if p.is_file()]
        pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} wrote pickled weights {pickles}; "
                                   "save safetensors (auditft never loads pickles)")
        if require_safetensors and not any(p.suffix == ".safetensors" for p in files):
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} wrote no .safetensors file into adapter_dir "
                                   f"(found {sorted(p.name for p in files) or 'nothing'})")
        session = ModelSession(tuner=tuner, base=prepared.base, data=prepared.data, adapter_dir=adapter_dir,
                               max_length=training_spec.max_length, batch_size=training_spec.eval_batch_size,
                               seed=prepared.suite.seed, max_new_tokens=4)
        try:
            if task == "generation":
                answers = session.generate([ex.text for ex in prepared.data.test[:2]])
                ok = len(answers) == 2 and all(isinstance(a, str) for a in answers)
            else:
                proba = session.adapter_proba("test")
                ok = proba.shape == (len(prepared.data.test), len(prepared.data.labels))
        except Exception as exc:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} load() of its own adapter failed: "
                                   f"{type(exc).__name__}: {exc}") from exc
        if not ok:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} load() gives a model with unusable outputs")
    return result
