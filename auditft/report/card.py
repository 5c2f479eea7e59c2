"""``model_card.md`` in the Hugging Face model-card format (YAML front matter with
``model-index``). It claims only what ran: results come from checks and audits that
produced values, and every check's status is stated next to it."""

from __future__ import annotations

from typing import Any

import yaml


def model_card(report: dict[str, Any]) -> str:
    results = []
    for kind, audit in report["audits"].items():
        if audit.get("error"):
            continue
        for name, metric in audit["metrics"].items():
            if metric.get("value") is None:
                continue
            results.append({"type": name, "value": round(float(metric["value"]), 4),
                            "name": f"{kind}: {name}", "verified": False})
    front = {
        "library_name": "peft",
        "base_model": report["base_model"]["ref"],
        "tags": ["auditft", report["tuner"]["kind"], report["task"]],
        "model-index": [{
            "name": report["run_id"],
            "results": [{
                "task": {"type": "text-classification" if report["task"] == "classification" else "text-generation"},
                "dataset": {"name": report["suite"], "type": "local"},
                "metrics": results,
            }],
        }],
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# {report['suite']} ({report['tuner']['kind']} adapter)", "",
             f"Run `{report['run_id']}` by {report['author']} at {report['created_at']}.", "",
             f"**Gate verdict: {report['verdict']}** (state at generation: {report['state']}). "
             "This adapter is quarantined until reviewers approve it and `auditft release` ships it; "
             "see `report.html` for the evidence and the ledger for the sign-off.", "",
             "## Intended use", "",
             report.get("description") or f"A {report['task']} adapter for the task described by suite `{report['suite']}`.",
             "", "## Gate checks", "", "| audit | metric | value | threshold | status |", "| --- | --- | --- | --- | --- |"]
    for check in report["checks"]:
        value = "n/a" if check["value"] is None else f"{check['value']:.4f}"
        op = ">=" if check["op"] == "min" else "<="
        threshold = "" if check["threshold"] is None else f"{op} {check['threshold']:g}"
        lines.append(f"| {check['audit']} | {check['metric']} | {value} | {threshold} | {check['status']} |")
    lines += _findings(report)
    lines += ["", "## Limitations and what was not tested", ""]
    for item in report["not_tested"]:
        lines.append(f"- Not tested: `{item['audit']}` ({item['reason']}).")
    for item in report["limitations"]:
        lines.append(f"- {item['kind']}: {item['limitation']}")
    for kind, audit in report["audits"].items():
        if audit.get("error"):
            lines.append(f"- The `{kind}` audit did not complete: {audit['error']}")
    tuner = report["tuner"]
    lines += ["", "## Training", "",
              f"- Tuner: `{tuner['kind']}` ({tuner['plugin']} {tuner['version']}), options `{tuner['options']}`",
              f"- Trainable parameters: {tuner['trainable_parameters']:,} of {tuner['total_parameters']:,}",
              f"- Steps: {tuner['steps']}, {tuner['seconds']:.1f} s", ""]
    lines += _plugins(report)
    return "\n".join(lines) + "\n"


def _findings(report: dict[str, Any]) -> list[str]:
    """One line per audit that states its headline finding (``evidence["summary"]``, a plain
    sentence the audit writes). Angle brackets are escaped: Markdown renderers pass raw HTML
    through, and a summary quotes model output."""
    found = [(kind, str(audit["evidence"]["summary"])) for kind, audit in report["audits"].items()
             if not audit.get("error") and isinstance(audit.get("evidence"), dict) and audit["evidence"].get("summary")]
    if not found:
        return []
    lines = ["", "## Findings by audit", ""]
    for kind, summary in found:
        text = " ".join(summary.replace("<", "&lt;").replace(">", "&gt;").split())
        lines.append(f"- **{kind}**: {text}")
    return lines


def _plugins(report: dict[str, Any]) -> list[str]:
    """The plugins the run used, with version, network use and extra weights (hash, or
    "remote, as declared"); for reports written before ``plugins_used``, the manifest's list."""
    used = report.get("plugins_used")
    if used is None:
        names = ", ".join(f"`{p['name']}` {p.get('version')}" for p in report["manifest"].get("plugins", []))
        return ["## Plugins", "", f"- Installed at the run (which were used is not recorded): {names or 'none'}", ""]
    lines = ["## Plugins used", ""]
    for plugin in used:
        kinds = [f"tuner `{k}`" for k in plugin.get("tuners", [])] + [f"audit `{k}`" for k in plugin.get("audits", [])]
        weights = "; ".join(
            f"`{w['ref']}` (sha256 `{w['sha256']}`, {w['bytes']:,} bytes)" if w.get("sha256")
            else f"`{w['ref']}` (remote, as declared)" for w in plugin.get("extra_weights", [])) or "none"
        lines.append(f"- `{plugin['name']}` {plugin.get('version') or '(version unknown)'}: {', '.join(kinds)}; "
                     f"network: {'yes (declared)' if plugin.get('needs_network') else 'no'}; extra weights: {weights}")
    return [*lines, ""]
