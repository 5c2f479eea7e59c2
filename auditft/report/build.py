"""Assemble ``report.json`` from a finished run, then render ``report.html`` and
``model_card.md`` from it, and write ``manifest.json`` last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft import gate
from auditft.fsutil import atomic_write_json, atomic_write_text
from auditft.manifest import hardware, hash_tree, library_versions, sha256_file, tree_size

if TYPE_CHECKING:
    from auditft.gate import Check
    from auditft.plugins import PluginManager
    from auditft.records import AuditResult, TuneResult
    from auditft.registry import Entry
    from auditft.context import RunContext

SCHEMA_VERSION = 1

#: audits a reviewer of each task would expect; absent ones are listed under "Not tested"
EXPECTED_AUDITS = {
    "classification": ("accuracy", "kfold", "fairness", "calibration", "robustness", "data"),
    "generation": ("accuracy", "hallucination", "fairness", "robustness", "data"),
}


def build_report(ctx: RunContext, pm: PluginManager, tuner_entry: Entry, tuning: TuneResult,
                 results: dict[str, AuditResult], checks: list[Check], verdict: str,
                 stopped: str | None = None) -> dict[str, Any]:
    suite = ctx.suite
    adapter_dir = ctx.run_dir / "adapter"
    manifest = {
        "run_id": ctx.run_id,
        "created_at": ctx.created_at,
        "author": ctx.author,
        "suite_file": {"path": str(suite.source.resolve()), "sha256": sha256_file(suite.source)},
        "resolved_suite_sha256": sha256_file(ctx.run_dir / "suite.yaml"),
        "base_model": ctx.base.to_dict(),
        "data": [f.to_dict() for f in ctx.data.files],
        "splits": ctx.data.counts(),
        "adapter": hash_tree(adapter_dir),
        "seeds": {"data": suite.data.seed, "training": suite.seed},
        "libraries": library_versions(),
        "plugins": [{"name": p["name"], "version": p["version"]} for p in _plugin_list(pm)],
        "hardware": hardware(),
    }
    used = [a.kind for a in suite.audits]
    not_tested = [{"audit": kind, "reason": ("not available in this installation" if kind not in pm.audits
                                             else "not selected in the suite")}
                  for kind in EXPECTED_AUDITS[suite.task] if kind not in used]
    limitations = [{"plugin": e.plugin, "kind": e.kind, "limitation": text}
                   for e in [tuner_entry, *(pm.audits.get(k) for k in used)] if e for text in e.limitations]
    state = "awaiting_review" if verdict == "passed" else "blocked"
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": ctx.run_id,
        "suite": suite.name,
        "description": suite.description,
        "task": suite.task,
        "state": state,
        "verdict": verdict,
        "author": ctx.author,
        "created_at": ctx.created_at,
        "base_model": ctx.base.to_dict(),
        "labels": ctx.data.labels,
        "group_columns": ctx.data.group_columns,
        "checks": gate.ordered([c.to_dict() for c in checks]),
        "audits": {kind: r.to_dict() for kind, r in results.items()},
        "tuner": {
            "kind": tuner_entry.kind,
            "plugin": tuner_entry.plugin,
            "version": tuner_entry.version,
            "options": suite.tuner.options,
            "training": suite.tuner.training.model_dump(mode="json"),
            "trainable_parameters": tuning.trainable_parameters,
            "total_parameters": tuning.total_parameters,
            "steps": tuning.steps,
            "seconds": tuning.seconds,
            "loss_curve": tuning.to_dict()["loss_curve"],
            "adapter_bytes": tree_size(adapter_dir),
            "facts": tuning.facts,
        },
        "release": {**suite.release.model_dump(mode="json"),
                    # the policy's durations in seconds: what sign-off reads back from the report
                    "review_window_seconds": suite.release.review_window_seconds,
                    "approval_expires_seconds": suite.release.approval_expires_seconds,
                    # the trust store's keys for the listed reviewers, as the run found them
                    "reviewer_key_fingerprints": dict(ctx.signoff.get("reviewer_key_fingerprints", {}))},
        #: what the run committed to before training (auditft.sealing) and earlier runs of the
        #: same suite name whose gates or test data differed
        "preregistration": ctx.signoff.get("preregistration"),
        #: each resume: when, from which phase, by whom; cached results recomputed because
        #: they did not match their seal
        "resumed": list(ctx.signoff.get("resumed", [])),
        "recomputed_on_resume": list(ctx.signoff.get("recomputed", [])),
        "not_tested": not_tested,
        "limitations": limitations,
        "timings": dict(ctx.timings),
        #: why the run ended before tuning (a data audit with ``on_fail: stop``), else None
        "stopped": stopped,
        "data_stage_audits": [k for k in used if (e := pm.audits.get(k)) is not None and e.stage == "data"],
        #: core's degeneracy rules and the adapter's profile (auditft.degeneracy); {} when not tuned
        "validity": dict(getattr(ctx, "validity", {}) or {}),
        #: the gate's statistics fixed before training: power plan per proportion gate, correction
        "gate_statistics": dict(getattr(ctx, "gate_statistics", {}) or {}),
        "manifest": manifest,
    }


def write_reports(ctx: RunContext, pm: PluginManager, tuner_entry: Entry, tuning: TuneResult,
                  results: dict[str, AuditResult], checks: list[Check], verdict: str,
                  stopped: str | None = None) -> dict[str, Any]:
    from auditft.report.card import model_card
    from auditft.report.html import render_html

    report = build_report(ctx, pm, tuner_entry, tuning, results, checks, verdict, stopped)
    run_dir = ctx.run_dir
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.html", render_html(report, pm))
    atomic_write_text(run_dir / "model_card.md", model_card(report))
    # records that keep changing (state, the run's copy of its ledger events) are not artefacts
    artefacts = hash_tree(run_dir, exclude=("work", "state.json", "manifest.json", "error.txt", "events.jsonl"))
    atomic_write_json(run_dir / "manifest.json", {**report["manifest"], "artefacts": artefacts})
    report["_report_sha256"] = artefacts["report.json"]
    return report


def load_report(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "report.json").read_text(encoding="utf-8"))


def _plugin_list(pm: PluginManager) -> list[dict[str, Any]]:
    from auditft.plugins import describe_plugins

    return describe_plugins(pm)["plugins"]
