"""Assemble ``report.json`` from a finished run, then render ``report.html`` and
``model_card.md`` from it, and write ``manifest.json`` last."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft import gate
from auditft.fsutil import atomic_write_json, atomic_write_text
from auditft.manifest import hardware, hash_tree, library_versions, sha256_file, tree_size
from auditft.models import compute_record

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
    "generation": ("accuracy", "hallucination", "fairness", "robustness", "retention", "calibration", "data"),
}


def build_report(ctx: RunContext, pm: PluginManager, tuner_entry: Entry, tuning: TuneResult,
                 results: dict[str, AuditResult], checks: list[Check], verdict: str,
                 stopped: str | None = None) -> dict[str, Any]:
    suite = ctx.suite
    adapter_dir = ctx.run_dir / "adapter"
    used = [a.kind for a in suite.audits]
    # the plugins whose tuner or audits this run used, with their declarations (extra weights
    # hashed here); every other installed plugin is listed apart, by name and version only
    plugins = plugins_used(tuner_entry, [pm.audits.get(k) for k in used], suite.source.resolve().parent)
    names = {p["name"] for p in plugins}
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
        "plugins": plugins,
        "plugins_installed": [{"name": p["name"], "version": p["version"]} for p in _plugin_list(pm)
                              if p["name"] not in names],
        "hardware": hardware(),
        #: precision asked for and used, devices, device map, torch build (auditft.models)
        "compute": compute_record(suite.tuner.training.precision, ctx.base),
    }
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
        #: one entry per plugin whose tuner or audit the run used: version, kinds, declarations
        "plugins_used": plugins,
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
    from auditft.report.compliance import assess, render_markdown
    from auditft.report.html import render_html

    report = build_report(ctx, pm, tuner_entry, tuning, results, checks, verdict, stopped)
    run_dir = ctx.run_dir
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.html", render_html(report, pm))
    atomic_write_text(run_dir / "model_card.md", model_card(report))
    # the regulator's map as the evidence stands at the gate (sign-off lines: pending)
    atomic_write_text(run_dir / "compliance.md", render_markdown(assess(report)))
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


def plugins_used(tuner: Entry | None, audits: list[Entry | None], base_dir: Path) -> list[dict[str, Any]]:
    """One record per plugin that provided the run's tuner or one of its audits: its name,
    version, the kinds it provided here, ``needs_network`` (any of those kinds declares it)
    and its declared ``extra_weights`` (``weight_record``; relative paths against ``base_dir``,
    the suite file's folder)."""
    from auditft.plugins import DEFAULT_PLUGINS

    found: dict[str, dict[str, Any]] = {}
    for role, entry in [("tuners", tuner), *(("audits", e) for e in audits)]:
        if entry is None:
            continue
        item = found.setdefault(entry.plugin, {
            "name": entry.plugin, "version": entry.version, "builtin": entry.plugin in DEFAULT_PLUGINS,
            "tuners": [], "audits": [], "needs_network": False, "extra_weights": []})
        if entry.kind not in item[role]:
            item[role].append(entry.kind)
        item["needs_network"] = item["needs_network"] or entry.needs_network
        for ref in entry.extra_weights:
            if all(w["ref"] != ref for w in item["extra_weights"]):
                item["extra_weights"].append(weight_record(ref, base_dir))
    return sorted(found.values(), key=lambda p: p["name"])


def weight_record(ref: str, base_dir: Path) -> dict[str, Any]:
    """``{"ref", "sha256", "bytes", "note"}`` for one declared extra weight: a local file is
    hashed; a local directory gets the sha256 of its sorted ``{file: sha256}`` map
    (``hash_tree``); anything else (``hf:org/judge@rev``, a URL) is recorded as declared."""
    path = _local(ref, base_dir)
    if path is not None and path.is_file():
        return {"ref": ref, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                "note": f"local file {path}, hashed when the report was written"}
    if path is not None and path.is_dir():
        files = hash_tree(path)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode("utf-8")).hexdigest()
        return {"ref": ref, "sha256": digest, "bytes": sum((path / rel).stat().st_size for rel in files),
                "note": f"local directory {path}: sha256 of the sorted {{file: sha256}} map of its {len(files)} files"}
    return {"ref": ref, "sha256": None, "bytes": None,
            "note": "remote reference, recorded as declared (auditft neither fetched nor hashed it)"}


def _local(ref: str, base_dir: Path) -> Path | None:
    """The existing local file or directory ``ref`` names (``file:`` prefix allowed), else None."""
    text = ref[len("file:"):] if ref.startswith("file:") else ref
    if text.startswith("//"):
        text = text[2:]
    try:
        path = Path(text).expanduser()
        path = path if path.is_absolute() else Path(base_dir) / path
        return path.resolve() if path.exists() else None
    except (OSError, ValueError):  # a name no filesystem accepts is not a local path
        return None
