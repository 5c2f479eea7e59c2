"""One run: validate everything, then tune -> audit -> gate -> report.

Everything a user can get wrong (suite, plugin options, data rows, model path) is checked in
``prepare`` before the run directory exists, so invalid input leaves nothing behind. After
that, each phase is recorded in ``state.json``; the report files are written atomically and
``manifest.json`` last, so a run is complete exactly when its manifest exists.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft import distributed as dist
from auditft import gate, resume as cache
from auditft.compare.evidence import write_test_rows
from auditft.context import PlannedAudit, Prepared, RunContext
from auditft.errors import AuditftError
from auditft.fsutil import atomic_write_json
from auditft.isolation import profiled, run_audit
from auditft.manifest import hash_tree
from auditft.opening import before_opening, open_run
from auditft.plan import prepare
from auditft.plugins import PluginManager
from auditft.records import AuditResult, TuneResult
from auditft.seeding import seed_everything
from auditft.signoff import sealing
from auditft.signoff.events import bound_artefacts, record
from auditft.signoff.layout import write_state
from auditft.suite import AuditSpec, Suite

if TYPE_CHECKING:
    from collections.abc import Callable

    from auditft.degeneracy import ObservedSession
    from auditft.inference import ModelSession
    from auditft.jobs import Tuner


def execute(prepared: Prepared, pm: PluginManager, *, reports: Path, author: str,
            resume: Path | None = None, base_cache: dict[str, Any] | None = None,
            on_open: Callable[[str, Path], None] | None = None) -> dict[str, Any]:
    """Run the prepared suite; returns the report (``report.json`` content).

    With ``resume``, continue an interrupted run in that directory: a finished tuning
    (``work/tuning.json`` beside a complete adapter) is kept, finished audits are reused when
    their cache key (adapter hashes + audit options) still matches, then gate and report.
    ``base_cache`` shares the base model's figures with other runs on the same base, data and
    inference settings (``ModelSession.base_cache_key``); ``on_open(run_id, run_dir)`` is
    called once the run directory exists (the several-tuner runner records it).
    """
    from auditft.progress import quiet_libraries

    quiet_libraries()
    dist.init()  # under torchrun / accelerate launch: join the process group first
    suite, data, base = prepared.suite, prepared.data, prepared.base
    signoff_facts = before_opening(prepared, reports, author) if dist.is_main() else None
    opened = open_run(prepared, reports, author, resume, signoff_facts) if signoff_facts is not None else None
    # every process works in rank 0's run directory; only rank 0 writes to it
    run_id, run_dir, created_at, author, finished = dist.broadcast(opened)
    if on_open is not None and dist.is_main():
        on_open(run_id, run_dir)
    if finished is not None:
        return finished
    ctx = RunContext(run_id, run_dir, suite, author, data, base, created_at, timings={"setup": prepared.seconds},
                     signoff=dist.broadcast(signoff_facts))
    try:
        report = _phases(ctx, prepared, pm, base_cache)
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


def _phases(ctx: RunContext, prepared: Prepared, pm: PluginManager,
            base_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """data audits -> tune -> model audits -> gate -> report. Under a data-parallel launcher
    every process computes; only the main process writes (and returns what it wrote)."""
    from auditft.inference import ModelSession

    suite, run_dir = ctx.suite, ctx.run_dir
    main = dist.is_main()
    # the data stage and the model audits see one base model: its figures are computed once
    base_cache = {} if base_cache is None else base_cache
    if main:
        pm.hook.auditft_run_started(run=ctx)
    data_audits = [a for a in prepared.audits if a.is_data_stage]
    model_audits = [a for a in prepared.audits if not a.is_data_stage]
    results: dict[str, AuditResult] = {}
    ctx.gate_statistics = _gate_statistics(suite, pm, len(ctx.data.test))  # before any compute is spent
    stop_reason = _data_stage(ctx, pm, data_audits, results, base_cache) if data_audits else None
    tuner = prepared.tuner.factory(prepared.tuner_options)
    if stop_reason is not None:
        tuning = TuneResult(trainable_parameters=0, total_parameters=0, steps=0, seconds=0.0,
                            facts={"not_run": stop_reason})
        if main:
            (run_dir / "adapter").mkdir(exist_ok=True)  # empty: nothing to review or release
    else:
        tuning = _tune_stage(ctx, prepared, pm, tuner)
        if main:
            pm.hook.auditft_tuning_finished(run=ctx, tuning=tuning)
            write_state(run_dir, "auditing")
        session = _observed(ModelSession.for_suite(suite, ctx.base, ctx.data, tuner=tuner,
                                                   adapter_dir=run_dir / "adapter", base_cache=base_cache), ctx)
        started = time.perf_counter()
        _run_audits(ctx, pm, model_audits, session, {"adapter": hash_tree(run_dir / "adapter")}, results)
        ctx.validity = _validity(ctx, session, results)  # every process: scoring may be sharded
        if main:  # per-row outcomes, so runs on the same rows compare with paired intervals
            write_test_rows(run_dir, suite.task, ctx.data, session, results)
        ctx.timings["auditing"] = round(time.perf_counter() - started, 3)
    if not main:
        return dist.broadcast(None)  # the finished report, once rank 0 has written it
    skipped = {a.kind: stop_reason for a in model_audits} if stop_reason else {}
    return _gate_and_report(ctx, prepared, pm, tuning, results, skipped, stop_reason)


def _data_stage(ctx: RunContext, pm: PluginManager, audits: list[PlannedAudit],
                results: dict[str, AuditResult], base_cache: dict[str, Any] | None) -> str | None:
    """Data-stage audits, on the suite's data and the base model alone, before any compute is
    spent on tuning; returns why the run stops here, or None."""
    from auditft.inference import ModelSession

    if dist.is_main():
        write_state(ctx.run_dir, "auditing-data")
    started = time.perf_counter()
    session = ModelSession.for_suite(ctx.suite, ctx.base, ctx.data, tuner=None, adapter_dir=None,  # base only
                                     base_cache=base_cache)
    evidence = {"data": {f.role: f.sha256 for f in ctx.data.files}, "base": ctx.base.weights_sha256}
    _run_audits(ctx, pm, audits, session, evidence, results,
                extra={"export_dir": ctx.run_dir / "data-audit"} if dist.is_main() else {})
    ctx.timings["data_audit"] = round(time.perf_counter() - started, 3)
    return _stop_reason([a.spec for a in audits], results, pm)


def _tune_stage(ctx: RunContext, prepared: Prepared, pm: PluginManager, tuner: Tuner) -> TuneResult:
    """Train into the quarantined adapter directory, or reuse a tuning a killed run finished."""
    from auditft.jobs import TuneJob
    from auditft.run_adapters import RunAdapters

    suite, run_dir, main = ctx.suite, ctx.run_dir, dist.is_main()
    work_dir, adapter_dir = run_dir / "work", run_dir / "adapter"
    tuning = dist.broadcast(cache.finished_tuning(ctx, work_dir) if main else None)
    if tuning is not None:
        ctx.timings.update(json.loads((work_dir / "tuning.json").read_text(encoding="utf-8"))["timings"])
        return tuning
    if main:
        write_state(run_dir, "tuning")
        shutil.rmtree(adapter_dir, ignore_errors=True)  # a half-written adapter is never reused
        adapter_dir.mkdir()
    resume = dist.broadcast((work_dir / "checkpoints").is_dir() if main else None)
    seed_everything(suite.seed)  # before any weights are created: heads and adapters init seeded
    started = time.perf_counter()
    with dist.adapter_target(adapter_dir) as target:
        tuning = tuner.tune(TuneJob.for_suite(suite, ctx.base, ctx.data, prepared.tuner_options,
                                              adapter_dir=target, work_dir=work_dir, adapters=RunAdapters(pm),
                                              resume=resume))  # continue from the newest checkpoint
    ctx.timings["tuning"] = round(time.perf_counter() - started, 3)
    if main:
        atomic_write_json(work_dir / "tuning.json", {"result": tuning.to_dict(), "timings": ctx.timings})
        sealing.seal(run_dir, ctx.run_id, work_dir / "tuning.json")
    return tuning


def _gate_and_report(ctx: RunContext, prepared: Prepared, pm: PluginManager, tuning: TuneResult, results: dict[str, AuditResult],
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
    report = write_reports(ctx, pm, prepared.tuner, tuning, results, checks, verdict,
                           stopped=stop_reason)
    record(run_dir, {"type": "gated", "run_id": ctx.run_id, "actor": ctx.author, "verdict": verdict,
                     "report_sha256": report["_report_sha256"], "artefacts": bound_artefacts(run_dir)})
    write_state(run_dir, "complete", verdict=verdict, state=report["state"])
    dist.broadcast({k: v for k, v in report.items() if not k.startswith("_")})  # the others wait for this
    shutil.rmtree(run_dir / "work", ignore_errors=True)  # scratch and checkpoints never leave the run
    return report


def _run_audits(ctx: RunContext, pm: PluginManager, audits: list[PlannedAudit], session: ModelSession,
                evidence: dict[str, Any], results: dict[str, AuditResult],
                extra: dict[str, Any] | None = None) -> None:
    """Run ``audits`` in order, reusing results cached under ``work/audits`` whose key (what
    the audit saw: adapter or data hashes, its options, the seed) still matches."""
    from auditft.jobs import AuditJob
    from auditft.retraining import CoreRetrainer

    suite, work_dir = ctx.suite, ctx.run_dir / "work"
    for planned in audits:
        kind, options = planned.kind, planned.options
        key = cache.audit_key(evidence, kind, options.model_dump(mode="json"), suite.seed)
        # rank 0 decides, so every process runs (and shards) exactly the same audits
        result = dist.broadcast(cache.cached_audit(ctx, work_dir, kind, key) if dist.is_main() else None)
        if result is None:
            job = AuditJob(suite=suite, task=suite.task, data=ctx.data, options=options, seed=suite.seed,
                           models=session, work_dir=work_dir, extra=dict(extra or {}),
                           retrain=CoreRetrainer(suite, session, work_dir))
            result = profiled(session, kind, lambda: run_audit(planned.entry, job, timeout=planned.spec.timeout_seconds))
            if result.error is None and dist.is_main():  # errors are re-tried on resume, results are not
                atomic_write_json(work_dir / "audits" / f"{kind}.json", {"key": key, "result": result.to_dict()})
                sealing.seal(ctx.run_dir, ctx.run_id, work_dir / "audits" / f"{kind}.json")
        results[kind] = result
        if dist.is_main():
            pm.hook.auditft_audit_finished(run=ctx, result=result)


def _stop_reason(data_specs: list[AuditSpec], results: dict[str, AuditResult], pm: PluginManager) -> str | None:
    """Why the run stops before tuning: a data audit with ``on_fail: stop`` did not pass."""
    stopping = [a for a in data_specs if a.stops_on_fail]
    checks = gate.decide_specs(stopping, results, pm.audits)
    bad = [c for c in checks if c.status != "pass"]
    if not bad:
        return None
    listed = ", ".join(f"{c.audit}.{c.metric} {c.status}" for c in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"stopped before tuning: data audit checks did not pass ({listed}{more}); see on_fail in the suite"


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


def _observed(session: ModelSession, ctx: RunContext) -> Any:
    """The session audits get: core records what every model it serves predicts."""
    from auditft.degeneracy import ObservedSession, Recorder

    return ObservedSession(session, Recorder(ctx.data.labels, ctx.suite.seed))


def _gate_statistics(suite: Suite, pm: PluginManager, test_rows: int) -> dict[str, Any]:
    """Before training: how many items each gate on a proportion needs (``auditft.power``)
    against the test split, and the suite's family correction."""
    from auditft import power

    return {"correction": suite.gate_correction, "power": power.plan(suite.audits, pm.audits, test_rows),
            "power_formula": power.FORMULA, "default_margin": power.DEFAULT_MARGIN}


def _validity(ctx: RunContext, session: ObservedSession, results: dict[str, AuditResult]) -> dict[str, Any]:
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


__all__ = ["execute", "prepare"]  # prepare lives in auditft.plan; importable from here as before
