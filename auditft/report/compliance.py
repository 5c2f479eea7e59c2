"""The regulator's map: which evidence in a run answers which obligation, and which is missing.

The obligations (EU AI Act articles, NIST AI RMF MEASURE subcategories) and the evidence that
answers each live in a data file a compliance team can edit
(``auditft/resources/compliance/obligations.yaml``; ``AUDITFT_COMPLIANCE_MAP`` names another).
Each evidence item is checked against the run's ``report.json`` (and, once people have
decided, the sign-off record): an audit that did not run, or errored, is a gap, never met.

Written as ``compliance.md`` into every run directory when its report is written (an artefact
like the report, hashed in the manifest: sign-off lines say ``pending`` there), and shown, with
the sign-off record as it stands, as the report's "Regulatory map" section.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

from auditft.errors import AuditftError

MAP_ENV = "AUDITFT_COMPLIANCE_MAP"
KINDS = ("audit", "report", "manifest", "policy", "signoff")
SIGNOFF = ("approved", "signed")
STATUS_ORDER = ("missing", "partial", "pending", "answered")


def map_source() -> tuple[str, bytes]:
    """(where the map comes from, its bytes): ``$AUDITFT_COMPLIANCE_MAP`` or the shipped file."""
    chosen = os.environ.get(MAP_ENV)
    if chosen:
        try:
            return chosen, Path(chosen).read_bytes()
        except OSError as exc:
            raise AuditftError(f"{chosen}: cannot read the compliance map ({MAP_ENV}): {exc}") from None
    shipped = resources.files("auditft") / "resources" / "compliance" / "obligations.yaml"
    return "auditft/resources/compliance/obligations.yaml", shipped.read_bytes()


def load_map() -> dict[str, Any]:
    """The map, checked: one-line errors naming the file and the obligation's key path."""
    import yaml

    where, raw = map_source()
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AuditftError(f"{where}: not a YAML compliance map: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("obligations"), list):
        raise AuditftError(f"{where}: a compliance map needs `frameworks` and a list of `obligations`")
    frameworks = data.get("frameworks") or {}
    for i, item in enumerate(data["obligations"]):
        path = f"{where}: obligations[{i}]"
        if not isinstance(item, dict):
            raise AuditftError(f"{path}: must be a mapping")
        for key in ("id", "framework", "ref", "title"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise AuditftError(f"{path}.{key}: required text")
        if item["framework"] not in frameworks:
            raise AuditftError(f"{path}.framework: {item['framework']!r} is not under `frameworks`")
        evidence = item.get("evidence")
        if not isinstance(evidence, list) or not evidence:
            raise AuditftError(f"{path}.evidence: a non-empty list of evidence items")
        for j, ev in enumerate(evidence):
            kinds = [k for k in KINDS if isinstance(ev, dict) and k in ev]
            if len(kinds) != 1:
                raise AuditftError(f"{path}.evidence[{j}]: exactly one of {', '.join(KINDS)}")
            if kinds[0] == "signoff" and ev["signoff"] not in SIGNOFF:
                raise AuditftError(f"{path}.evidence[{j}].signoff: one of {', '.join(SIGNOFF)}")
    data["_source"] = {"path": where, "sha256": hashlib.sha256(raw).hexdigest(), "version": data.get("version")}
    return data


def assess(report: dict[str, Any], review: dict[str, Any] | None = None,
           mapping: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every obligation with its evidence found or missing in ``report``. ``review`` is the
    sign-off record as the report shows it (``signoff.rendering.review_info``); without it,
    sign-off evidence is ``pending``."""
    mapping = mapping or load_map()
    obligations = []
    for item in mapping["obligations"]:
        found = [_evidence(ev, report, review) for ev in item["evidence"]]
        obligations.append({k: item.get(k) for k in ("id", "framework", "ref", "title", "requirement")}
                           | {"status": _status(found), "evidence": found})
    summary: dict[str, dict[str, int]] = {}
    for o in obligations:
        counts = summary.setdefault(o["framework"], dict.fromkeys(STATUS_ORDER, 0))
        counts[o["status"]] += 1
    return {"map": mapping["_source"], "frameworks": mapping.get("frameworks") or {}, "run_id": report.get("run_id"),
            "obligations": obligations, "summary": summary}


def _status(found: list[dict[str, Any]]) -> str:
    present = [e["found"] for e in found]
    if all(p is True for p in present):
        return "answered"
    if all(p is not False for p in present):
        return "pending"  # only decisions people have not made yet are outstanding
    return "missing" if not any(p is True for p in present) else "partial"


def _evidence(ev: dict[str, Any], report: dict[str, Any], review: dict[str, Any] | None) -> dict[str, Any]:
    kind = next(k for k in KINDS if k in ev)
    name = str(ev[kind])
    out: dict[str, Any] = {"kind": kind, "name": name, "what": ev.get("what", ""), "found": False, "where": "",
                           "detail": "", "checks": []}
    if kind == "audit":
        audit = (report.get("audits") or {}).get(name)
        out["where"] = f"report.json → audits.{name}"
        out["checks"] = [{"id": f"{c['audit']}:{c['metric']}", "status": c["status"]}
                         for c in report.get("checks") or [] if c.get("audit") == name]
        if not isinstance(audit, dict):
            out["detail"] = "the audit did not run"
        elif audit.get("error"):
            out["detail"] = f"the audit errored: {' '.join(str(audit['error']).split())[:160]}"
        elif ev.get("evidence") and not (audit.get("evidence") or {}).get(ev["evidence"]):
            out["detail"] = f"the audit ran but its evidence has no {ev['evidence']!r}"
        else:
            out["found"] = True
    elif kind in ("report", "manifest"):
        holder = report if kind == "report" else report.get("manifest") or {}
        out["where"] = f"report.json → {name}" if kind == "report" else f"manifest.json → {name}"
        out["found"] = bool(holder.get(name)) or (name == "not_tested" and name in holder)
        out["detail"] = "" if out["found"] else f"no {name} recorded"
    elif kind == "policy":
        value = (report.get("release") or {}).get(name)
        out["where"] = f"suite.yaml → release.{name.removesuffix('_seconds')}"
        minimum = ev.get("min")
        out["found"] = bool(value) if minimum is None else isinstance(value, (int, float)) and value >= minimum
        out["detail"] = f"{name} = {value}"
    else:
        out["where"] = "ledger.jsonl (sign-off events)"
        decided = [e for e in (review or {}).get("events") or [] if e.get("type") in ("approved", "rejected")]
        approvals = [e for e in decided if e.get("type") == "approved" and (name != "signed" or e.get("signed"))]
        if approvals:
            out["found"] = True
            out["detail"] = ", ".join(f"{e.get('actor')} at {e.get('time')}" for e in approvals[:5])
        elif not decided:
            out["found"], out["detail"] = None, "pending: decided by reviewers after the report"
        elif any(e.get("type") == "approved" for e in decided):
            out["detail"] = "approved without a signature from a trusted key"
        else:
            out["detail"] = "rejected: no approval"
    return out


def render_markdown(assessment: dict[str, Any]) -> str:
    """``compliance.md``: per framework, one row per obligation, then each obligation's evidence."""
    source = assessment["map"]
    lines = [f"# Regulatory map: {assessment['run_id']}", "",
             "Which evidence in this run answers which obligation, and which is missing. Generated by auditft "
             f"from `{source['path']}` (version {source.get('version')}, sha256 `{source['sha256'][:16]}…`); "
             "edit a copy and set `AUDITFT_COMPLIANCE_MAP` to change the mapping. **answered**: every item "
             "present; **partial**: some; **pending**: only people's decisions outstanding (written when the "
             "report was, before any review); **missing**: none. An audit that did not run is a gap, never met.",
             ""]
    for framework, title in assessment["frameworks"].items():
        rows = [o for o in assessment["obligations"] if o["framework"] == framework]
        if not rows:
            continue
        counts = assessment["summary"].get(framework, {})
        lines += [f"## {title}", "", " · ".join(f"{counts.get(s, 0)} {s}" for s in reversed(STATUS_ORDER)), "",
                  "| obligation | status | evidence (where) |", "| --- | --- | --- |"]
        for o in rows:
            cells = "<br>".join(f"{'✓' if e['found'] else '…' if e['found'] is None else '✗'} {_md(e['what'])} "
                                f"(`{e['where']}`{_checks(e)}){' — ' + _md(e['detail']) if e['detail'] else ''}"
                                for e in o["evidence"])
            lines.append(f"| **{_md(o['ref'])}** {_md(o['title'])} | {o['status']} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def _checks(e: dict[str, Any]) -> str:
    return "; checks " + ", ".join(f"`{c['id']}` {c['status']}" for c in e["checks"]) if e["checks"] else ""


def _md(text: object) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")
