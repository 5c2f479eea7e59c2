"""One run: validate everything, then tune -> audit -> gate -> report.

Everything a user can get wrong (suite, plugin options, data rows, model path) is checked in
``prepare`` before the run directory exists, so invalid input leaves nothing behind. After
that, each phase is recorded in ``state.json``; the report files are written atomically and
``manifest.json`` last, so a run is complete exactly when its manifest exists.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditft import distributed as dist
from auditft import gate, sealing
from auditft.data import SplitData, load_data
from auditft.errors import AuditftError, RunDirError, SuiteError
from auditft.fsutil import atomic_write_json, atomic_write_text
from auditft.ledger import now_iso
from auditft.models import ResolvedModel, resolve_model
from auditft.plugins import PluginManager
from auditft.records import AuditResult, TuneResult
from auditft.manifest import hash_tree
from auditft.rundir import create_run_dir, read_state, write_state
from auditft.signoff import bound_artefacts, record, run_events
from auditft.suite import Suite, load_suite, plugin_options


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


@dataclass
class Prepared:
    suite: Suite
    data: SplitData
    base: ResolvedModel
    tuner_options: Any
    audit_options: dict[str, Any]
    #: time spent validating suite, options, data rows and model (the run's "setup" phase)
    seconds: float = 0.0


def author_name(explicit: str | None = None) -> str:
    return explicit or os.environ.get("AUDITFT_USER") or getpass.getuser()


def prepare(suite_path: Path, pm: PluginManager) -> Prepared:
    """Validate the suite, its plugins' options, every data row and the base model."""
    started = time.perf_counter()
    suite = load_suite(suite_path, pm)
    # a data-stage audit (e.g. ``data``) measures and gates train/test overlap itself
    data = load_data(suite, tolerate_overlap=any(pm.audits.get(a.kind).stage == "data"  # type: ignore[union-attr]
                                                 for a in suite.audits))
    base = resolve_model(suite.model.base, base_dir=suite.source.parent,
                         trust_remote_code=suite.model.trust_remote_code, revision=suite.model.revision)
    here = suite.source.parent
    tuner_entry = pm.tuners.get(suite.tuner.kind)
    tuner_options = plugin_options(tuner_entry.options, suite.tuner.options, here)  # type: ignore[union-attr]
    # a tuner may know combinations that cannot work (optional ``check_model`` on its class)
    check_model = getattr(tuner_entry.factory, "check_model", None)  # type: ignore[union-attr]
    reason = check_model(base, suite.task, data.labels) if check_model is not None else None
    if reason:
        raise SuiteError(f"{suite.source}: tuner.kind: {reason}")
    audit_options = {a.kind: plugin_options(pm.audits.get(a.kind).options, a.options, here)  # type: ignore[union-attr]
                     for a in suite.audits}
    return Prepared(suite, data, base, tuner_options, audit_options, round(time.perf_counter() - started, 3))


def execute(prepared: Prepared, pm: PluginManager, *, reports: Path, author: str,
            resume: Path | None = None) -> dict[str, Any]:
    """Run the prepared suite; returns the report (``report.json`` content).

    With ``resume``, continue an interrupted run in that directory: a finished tuning
    (``work/tuning.json`` beside a complete adapter) is kept, finished audits are reused when
    their cache key (adapter hashes + audit options) still matches, then gate and report.
    """
    from auditft.progress import quiet_libraries

    quiet_libraries()
    dist.init()  # under torchrun / accelerate launch: join the process group first
    suite, data, base = prepared.suite, prepared.data, prepared.base
    signoff_facts = _before_opening(prepared, reports, author) if dist.is_main() else None
    opened = _open_run(prepared, reports, author, resume, signoff_facts) if dist.is_main() else None
    # every process works in rank 0's run directory; only rank 0 writes to it
    run_id, run_dir, created_at, author, finished = dist.broadcast(opened)
    if finished is not None:
        return finished
    ctx = RunContext(run_id, run_dir, suite, author, data, base, created_at, timings={"setup": prepared.seconds},
                     signoff=dist.broadcast(signoff_facts))
    try:
        report = _phases(ctx, prepared, pm)
    except BaseException as exc:
        if dist.is_main():
            write_state(run_dir, "failed", error=_failure_reason(exc))
            if not isinstance(exc, (AuditftError, KeyboardInterrupt, SystemExit)):
                (run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise
    # outside the failure handler: an observer that raises cannot un-complete a gated run
    if dist.is_main():
        pm.hook.auditft_run_finished(run=ctx, report={k: v for k, v in report.items() if not k.startswith("_")})
    return report


def _before_opening(prepared: Prepared, reports: Path, author: str) -> dict[str, Any]:
    """What must hold before a run directory exists: a valid author name, a ledger this
    process may write (a keyed ledger needs its key), reviewer keys the trust store holds.
    Returns the sign-off facts the report records."""
    from auditft import identity, sealing, trust
    from auditft.ledger import LEDGER_NAME, Ledger

    identity.person(author, "--author")
    Ledger(Path(reports).resolve() / LEDGER_NAME).check_writable()
    suite = prepared.suite
    return {"preregistration": sealing.preregistration(suite, prepared.data), "resumed": [],
            "reviewer_key_fingerprints": trust.check_policy(reports, suite.release.reviewer_keys, str(suite.source))}


def _open_run(prepared: Prepared, reports: Path, author: str, resume: Path | None,
              facts: dict[str, Any]) -> tuple[str, Path, str, str, dict[str, Any] | None]:
    """Create (or reopen) the run directory: (run id, directory, created at, author, the
    report when a resumed run turns out to be finished already)."""
    from auditft import sealing
    from auditft.rundir import ledger_for

    suite = prepared.suite
    if resume is None:
        run_id, run_dir = create_run_dir(reports, suite.name)
        created_at = now_iso()
        import yaml

        atomic_write_text(run_dir / "suite.yaml", yaml.safe_dump(suite.resolved_dict(), sort_keys=False))
        atomic_write_json(run_dir / "work" / "inputs.json", _inputs(prepared))
        write_state(run_dir, "tuning", run_id=run_id, suite=suite.name, author=author, created_at=created_at)
        created = record(run_dir, {"type": "created", "run_id": run_id, "actor": author, "suite": suite.name,
                                   **facts["preregistration"]})
        sealing.seal(run_dir, run_id, run_dir / "work" / "inputs.json")  # what a resume must find unchanged
        facts["preregistration"] = {**facts["preregistration"], "created_seq": created["seq"],
                                    "earlier_runs_that_differ": sealing.earlier_differences(
                                        ledger_for(run_dir).events(), suite.name, run_id, facts["preregistration"])}
        return run_id, run_dir, created_at, author, None
    run_dir, run_id, created_at, run_author = _reopen(resume, prepared)
    created = next((e for e in ledger_for(run_dir).events(run_id) if e.get("type") == "created"), {})
    if not sealing.is_sealed(run_dir, run_id, run_dir / "work" / "inputs.json"):
        raise RunDirError(f"{run_dir / 'work' / 'inputs.json'}: does not match its seal in the ledger; "
                          "the run cannot be resumed (start a new run)")
    changed = [k for k, v in facts["preregistration"].items() if created.get(k) != v]
    if changed:
        raise RunDirError(f"{run_dir}: the suite's {', '.join(c.removesuffix('_sha256') for c in changed)} differ from "
                          "what the run pre-registered; start a new run instead")
    facts["preregistration"] = {**{k: created.get(k) for k in facts["preregistration"]},
                                "created_seq": created.get("seq"),
                                "earlier_runs_that_differ": sealing.earlier_differences(
                                    ledger_for(run_dir).events(), suite.name, run_id, created)}
    if any(e.get("type") == "gated" for e in run_events(run_dir)):
        # killed after the gate was recorded: the evidence is final, only the phase is stale
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        write_state(run_dir, "complete", verdict=report["verdict"], state=report["state"])
        shutil.rmtree(run_dir / "work", ignore_errors=True)
        return run_id, run_dir, created_at, run_author, report
    phase = read_state(run_dir).get("phase")
    record(run_dir, {"type": "resumed", "run_id": run_id, "actor": author, "from_phase": phase})
    facts["resumed"] = [{"time": e.get("time"), "from_phase": e.get("from_phase"), "actor": e.get("actor")}
                        for e in ledger_for(run_dir).events(run_id) if e.get("type") == "resumed"]
    facts["recomputed"] = []
    return run_id, run_dir, created_at, run_author, None  # the run keeps its author (four-eyes)


def _phases(ctx: RunContext, prepared: Prepared, pm: PluginManager) -> dict[str, Any]:
    """data audits -> tune -> model audits -> gate -> report. Under a data-parallel launcher
    every process computes; only the main process writes (and returns what it wrote)."""
    from auditft.inference import ModelSession

    suite, run_dir = ctx.suite, ctx.run_dir
    main = dist.is_main()
    if main:
        pm.hook.auditft_run_started(run=ctx)
    data_specs = [a for a in suite.audits if pm.audits.get(a.kind).stage == "data"]  # type: ignore[union-attr]
    model_specs = [a for a in suite.audits if a not in data_specs]
    session_args = dict(base=ctx.base, data=ctx.data, max_length=suite.tuner.training.max_length,
                        batch_size=suite.tuner.training.eval_batch_size, seed=suite.seed,
                        system_prompt=suite.generation.system_prompt,
                        max_new_tokens=suite.generation.max_new_tokens)
    results: dict[str, AuditResult] = {}
    ctx.gate_statistics = _gate_statistics(suite, pm, len(ctx.data.test))  # before any compute is spent
    stop_reason = _data_stage(ctx, prepared, pm, data_specs, session_args, results) if data_specs else None
    tuner = pm.tuners.get(suite.tuner.kind).factory(prepared.tuner_options)  # type: ignore[union-attr]
    if stop_reason is not None:
        tuning = TuneResult(trainable_parameters=0, total_parameters=0, steps=0, seconds=0.0,
                            facts={"not_run": stop_reason})
        if main:
            (run_dir / "adapter").mkdir(exist_ok=True)  # empty: nothing to review or release
    else:
        tuning = _tune_stage(ctx, prepared, tuner)
        if main:
            pm.hook.auditft_tuning_finished(run=ctx, tuning=tuning)
            write_state(run_dir, "auditing")
        session = _observed(ModelSession(tuner=tuner, adapter_dir=run_dir / "adapter", **session_args), ctx)
        started = time.perf_counter()
        _run_audits(ctx, prepared, pm, model_specs, session, {"adapter": hash_tree(run_dir / "adapter")}, results)
        ctx.validity = _validity(ctx, session, results)  # every process: scoring may be sharded
        ctx.timings["auditing"] = round(time.perf_counter() - started, 3)
    if not main:
        return dist.broadcast(None)  # the finished report, once rank 0 has written it
    skipped = {a.kind: stop_reason for a in model_specs} if stop_reason else {}
    return _gate_and_report(ctx, pm, tuning, results, skipped, stop_reason)


def _data_stage(ctx: RunContext, prepared: Prepared, pm: PluginManager, specs: list[Any],
                session_args: dict[str, Any], results: dict[str, AuditResult]) -> str | None:
    """Data-stage audits, on the suite's data and the base model alone, before any compute is
    spent on tuning; returns why the run stops here, or None."""
    from auditft.inference import ModelSession

    if dist.is_main():
        write_state(ctx.run_dir, "auditing-data")
    started = time.perf_counter()
    session = ModelSession(tuner=None, adapter_dir=None, **session_args)  # base model only
    evidence = {"data": {f.role: f.sha256 for f in ctx.data.files}, "base": ctx.base.weights_sha256}
    _run_audits(ctx, prepared, pm, specs, session, evidence, results,
                extra={"export_dir": ctx.run_dir / "data-audit"} if dist.is_main() else {})
    ctx.timings["data_audit"] = round(time.perf_counter() - started, 3)
    return _stop_reason(ctx.suite, specs, results, pm)


def _tune_stage(ctx: RunContext, prepared: Prepared, tuner: Any) -> TuneResult:
    """Train into the quarantined adapter directory, or reuse a tuning a killed run finished."""
    from auditft.jobs import TuneJob

    suite, run_dir, main = ctx.suite, ctx.run_dir, dist.is_main()
    work_dir, adapter_dir = run_dir / "work", run_dir / "adapter"
    tuning = dist.broadcast(_finished_tuning(ctx, work_dir) if main else None)
    if tuning is not None:
        ctx.timings.update(json.loads((work_dir / "tuning.json").read_text(encoding="utf-8"))["timings"])
        return tuning
    if main:
        write_state(run_dir, "tuning")
        shutil.rmtree(adapter_dir, ignore_errors=True)  # a half-written adapter is never reused
        adapter_dir.mkdir()
    resume = dist.broadcast((work_dir / "checkpoints").is_dir() if main else None)
    _seed_everything(suite.seed)  # before any weights are created: heads and adapters init seeded
    started = time.perf_counter()
    with dist.adapter_target(adapter_dir) as target:
        tuning = tuner.tune(TuneJob(
            suite=suite, task=suite.task, base=ctx.base, data=ctx.data, training=suite.tuner.training,
            options=prepared.tuner_options, seed=suite.seed, adapter_dir=target, work_dir=work_dir,
            resume=resume,  # continue from the newest checkpoint
        ))
    ctx.timings["tuning"] = round(time.perf_counter() - started, 3)
    if main:
        atomic_write_json(work_dir / "tuning.json", {"result": tuning.to_dict(), "timings": ctx.timings})
        sealing.seal(run_dir, ctx.run_id, work_dir / "tuning.json")
    return tuning


def _gate_and_report(ctx: RunContext, pm: PluginManager, tuning: TuneResult, results: dict[str, AuditResult],
                     skipped: dict[str, str], stop_reason: str | None) -> dict[str, Any]:
    """Main process only: decide, write the report (manifest last), record the gate."""
    from auditft.report.build import write_reports

    suite, run_dir = ctx.suite, ctx.run_dir
    write_state(run_dir, "gating")
    from auditft.degeneracy import Profile

    subject = ctx.validity.get("subject")
    subject = Profile.from_dict(subject) if subject else None
    checks = gate.decide(suite, results, pm.audits, skipped=skipped, subject=subject)
    base = ctx.validity.get("base")
    checks.append(gate.subject_check(subject, Profile.from_dict(base) if base else None, not_run=stop_reason))
    if ctx.validity:
        from auditft.degeneracy import training_health

        ctx.validity["training"] = training_health(tuning.loss_curve, subject)
    verdict = gate.verdict(checks)
    write_state(run_dir, "reporting", verdict=verdict)
    report = write_reports(ctx, pm, pm.tuners.get(suite.tuner.kind), tuning, results, checks, verdict,
                           stopped=stop_reason)
    record(run_dir, {"type": "gated", "run_id": ctx.run_id, "actor": ctx.author, "verdict": verdict,
                     "report_sha256": report["_report_sha256"], "artefacts": bound_artefacts(run_dir)})
    write_state(run_dir, "complete", verdict=verdict, state=report["state"])
    dist.broadcast({k: v for k, v in report.items() if not k.startswith("_")})  # the others wait for this
    shutil.rmtree(run_dir / "work", ignore_errors=True)  # scratch and checkpoints never leave the run
    return report


def _run_audits(ctx: RunContext, prepared: Prepared, pm: PluginManager, specs: list[Any], session: Any,
                evidence: dict[str, Any], results: dict[str, AuditResult],
                extra: dict[str, Any] | None = None) -> None:
    """Run ``specs`` in order, reusing results cached under ``work/audits`` whose key (what
    the audit saw: adapter or data hashes, its options, the seed) still matches."""
    from auditft.jobs import AuditJob

    suite, work_dir = ctx.suite, ctx.run_dir / "work"
    for spec in specs:
        entry = pm.audits.get(spec.kind)
        options = prepared.audit_options[spec.kind]
        key = _audit_key(evidence, spec.kind, options.model_dump(mode="json"), suite.seed)
        # rank 0 decides, so every process runs (and shards) exactly the same audits
        result = dist.broadcast(_cached_audit(ctx, work_dir, spec.kind, key) if dist.is_main() else None)
        if result is None:
            job = AuditJob(suite=suite, task=suite.task, data=ctx.data, options=options, seed=suite.seed,
                           models=session, work_dir=work_dir, extra=dict(extra or {}))
            result = _profiled(session, spec.kind, lambda: _run_audit(entry, job, timeout=spec.timeout_seconds))
            if result.error is None and dist.is_main():  # errors are re-tried on resume, results are not
                atomic_write_json(work_dir / "audits" / f"{spec.kind}.json", {"key": key, "result": result.to_dict()})
                sealing.seal(ctx.run_dir, ctx.run_id, work_dir / "audits" / f"{spec.kind}.json")
        results[spec.kind] = result
        if dist.is_main():
            pm.hook.auditft_audit_finished(run=ctx, result=result)


def _stop_reason(suite: Suite, data_specs: list[Any], results: dict[str, AuditResult],
                 pm: PluginManager) -> str | None:
    """Why the run stops before tuning: a data audit with ``on_fail: stop`` did not pass."""
    stopping = [a for a in data_specs if a.stops_on_fail]
    checks = gate.decide_specs(stopping, results, pm.audits)
    bad = [c for c in checks if c.status != "pass"]
    if not bad:
        return None
    listed = ", ".join(f"{c.audit}.{c.metric} {c.status}" for c in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"stopped before tuning: data audit checks did not pass ({listed}{more}); see on_fail in the suite"


def _inputs(prepared: Prepared) -> dict[str, Any]:
    """What a resumed run must find unchanged: the resolved suite, data and base weights."""
    return {"suite": prepared.suite.resolved_dict(), "data": {f.role: f.sha256 for f in prepared.data.files},
            "base": prepared.base.weights_sha256}


def _reopen(run_dir: Path, prepared: Prepared) -> tuple[Path, str, str, str]:
    """Check that ``run_dir`` is an unfinished run of this very suite, data and model."""
    state = read_state(run_dir)
    if state.get("phase") == "complete":
        raise RunDirError(f"{run_dir}: the run is already complete; nothing to resume")
    inputs_path = Path(run_dir) / "work" / "inputs.json"
    if not inputs_path.exists() or state.get("suite") != prepared.suite.name:
        raise RunDirError(f"{run_dir}: not an unfinished run of suite {prepared.suite.name!r}")
    recorded = json.loads(inputs_path.read_text(encoding="utf-8"))
    for what in ("suite", "data", "base"):
        if recorded[what] != _inputs(prepared)[what]:
            raise RunDirError(f"{run_dir}: the {what} changed since this run started; start a new run instead")
    return Path(run_dir), state["run_id"], state["created_at"], state["author"]


def _unsealed(ctx: RunContext, path: Path) -> bool:
    """A cached file that is absent, or whose bytes do not match its seal (then noted)."""
    if not path.exists():
        return True
    if sealing.is_sealed(ctx.run_dir, ctx.run_id, path):
        return False
    ctx.signoff.setdefault("recomputed", []).append(
        f"{path.relative_to(ctx.run_dir).as_posix()}: did not match its seal in the ledger; recomputed")
    return True


def _finished_tuning(ctx: RunContext, work_dir: Path) -> TuneResult | None:
    path = work_dir / "tuning.json"
    if _unsealed(ctx, path):
        return None
    data = json.loads(path.read_text(encoding="utf-8"))["result"]
    data["loss_curve"] = [tuple(point) for point in data["loss_curve"]]
    return TuneResult(**data)


def _audit_key(evidence: dict[str, Any], kind: str, options: dict[str, Any], seed: int) -> str:
    blob = json.dumps({**evidence, "kind": kind, "options": options, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _cached_audit(ctx: RunContext, work_dir: Path, kind: str, key: str) -> AuditResult | None:
    path = work_dir / "audits" / f"{kind}.json"
    if _unsealed(ctx, path):
        return None
    cached = json.loads(path.read_text(encoding="utf-8"))
    return AuditResult.from_dict(cached["result"]) if cached.get("key") == key else None


def _seed_everything(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, AuditftError):
        reason = str(exc)
    elif isinstance(exc, SystemExit) and isinstance(exc.code, int) and exc.code > 128:
        reason = f"interrupted by signal {exc.code - 128}"
    elif isinstance(exc, KeyboardInterrupt):
        reason = "interrupted"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return " ".join(reason.split())[:500]


def _observed(session: Any, ctx: RunContext) -> Any:
    """The session audits get: core records what every model it serves predicts."""
    from auditft.degeneracy import ObservedSession, Recorder

    return ObservedSession(session, Recorder(ctx.data.labels, ctx.suite.seed))


def _profiled(session: Any, kind: str, run: Any) -> AuditResult:
    """Run one audit and attach core's degeneracy profiles of the models it scored (core-owned:
    whatever the plugin put in ``scored_models`` is replaced)."""
    from dataclasses import replace

    recorder = getattr(session, "recorder", None)
    if recorder is None:
        return run()
    recorder.start(kind)
    result = run()
    return replace(result, scored_models=[p.to_dict() for p in recorder.profiles(kind)] if not result.error else [])


def _gate_statistics(suite: Suite, pm: PluginManager, test_rows: int) -> dict[str, Any]:
    """Before training: how many items each gate on a proportion needs (``auditft.power``)
    against the test split, and the suite's family correction."""
    from auditft import power

    return {"correction": suite.gate_correction, "power": power.plan(suite.audits, pm.audits, test_rows),
            "power_formula": power.FORMULA, "default_margin": power.DEFAULT_MARGIN}


def _validity(ctx: RunContext, session: Any, results: dict[str, AuditResult]) -> dict[str, Any]:
    """Core's own verdict on the model under test: the adapter's degeneracy profile on the test
    split (from the session's cached predictions, so usually no extra inference), and the base
    model's where an audit scored it."""
    from auditft.degeneracy import RULES

    recorder = session.recorder
    recorder.start("core")
    test = ctx.data.test
    try:
        if ctx.suite.task == "classification":
            session.adapter_proba("test")
        else:
            session.generate([ex.text for ex in test], which="adapter")
        found = {p.model: p for p in recorder.profiles("core")}
        subject = found.get("adapter")
    except Exception as exc:  # a model that cannot be scored is an error check, not a crash
        return {"rules": RULES, "subject": None, "base": None, "error": f"{type(exc).__name__}: {exc}"[:500]}
    base = next((p for r in results.values() for p in r.scored_models
                 if p.get("model") == "base" and p.get("split") in ("test", "prompts")), None)
    return {"rules": RULES, "subject": subject.to_dict() if subject else None, "base": base}


class AuditTimeout(BaseException):
    """Raised inside an audit at its deadline. A BaseException, so a plugin's broad
    ``except Exception`` cannot swallow it and keep running."""


def _run_audit(entry: Any, job: Any, *, timeout: float | None = None, strict: bool = False) -> AuditResult:
    """An audit that raises, overruns ``timeout`` or returns a malformed result becomes an
    ``error`` result; the run goes on, the gate blocks, the report is written. ``strict``
    (the conformance kit) returns the plugin's result as it is, for the kit to judge."""
    started = time.perf_counter()
    try:
        with _deadline(timeout):
            result = entry.factory(job.options).run(job)
        return result if strict else _usable(result, entry.kind)
    except AuditTimeout:
        message = f"timed out after {timeout:g} s (audits[].timeout in the suite)"
    except MalformedResult as exc:
        message = f"malformed result: {exc}"
    except Exception as exc:  # isolate plugin failures: shown as `error`, never a crash
        message = f"{type(exc).__name__}: {exc}"
    return AuditResult(kind=entry.kind, error=f"plugin {entry.plugin!r}: {' '.join(message.split())[:500]}",
                       seconds=round(time.perf_counter() - started, 3))


class MalformedResult(Exception):
    pass


def _usable(result: Any, kind: str) -> AuditResult:
    """Structural problems make the audit an ``error``; a non-finite figure is set to None so
    the gate marks just the checks on it ``error`` ("value is not a finite number")."""
    import math
    from dataclasses import replace

    from auditft.records import Metric

    if not isinstance(result, AuditResult):
        raise MalformedResult(f"returned {type(result).__name__}, not AuditResult")
    if result.kind != kind:
        raise MalformedResult(f"returned a result of kind {result.kind!r}")
    if not isinstance(result.metrics, dict) or not all(isinstance(m, Metric) for m in result.metrics.values()):
        raise MalformedResult("metrics must map names to auditft.records.Metric")

    def finite(x: Any) -> Any:
        return x if x is None or (isinstance(x, (int, float)) and math.isfinite(x)) else None

    metrics, notes = {}, list(result.notes)
    for name, m in result.metrics.items():
        clean = replace(m, value=finite(m.value), ci_low=finite(m.ci_low), ci_high=finite(m.ci_high),
                        base_value=finite(m.base_value))
        if clean != m:
            notes.append(f"metric {name!r} had a non-finite or non-numeric figure ({m.value!r}); "
                         "its checks show error")
        metrics[name] = clean
    try:
        result = replace(result, metrics=metrics, notes=notes)
        json.dumps(result.to_dict(), allow_nan=False)
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedResult(f"not JSON-serialisable: {exc}") from None
    return result


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise ``AuditTimeout`` in this thread after ``seconds`` (a POSIX interval timer on the
    main thread; elsewhere, e.g. Windows or a worker thread, the limit is not enforced)."""
    import signal
    import threading

    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise AuditTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
