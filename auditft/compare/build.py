"""Assemble ``compare.json`` from loaded runs: every check side by side, the paired
differences of every pair of runs on the same rows, the cost, the Pareto front."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from itertools import combinations
from typing import Any

import numpy as np

from auditft.compare import paired
from auditft.compare.runs import RunRecord, check_comparable

SCHEMA_VERSION = 1


def compare(runs: list[RunRecord], *, n_boot: int = paired.N_BOOT, seed: int = 0,
            against: RunRecord | None = None) -> tuple[dict[str, Any], list[str]]:
    """(``compare.json`` content, warnings). With ``against`` (the released run), the
    comparison is ``against`` -> ``runs[0]``: what changed since the last sign-off."""
    every = [against, *runs] if against is not None else list(runs)
    warnings = check_comparable(every)
    seen: dict[str, int] = {}
    for r in every:  # the same run twice (or a copy) still gets its own column
        seen[r.run_id] = seen.get(r.run_id, 0) + 1
        r.label = r.run_id if seen[r.run_id] == 1 else f"{r.run_id}#{seen[r.run_id]}"
    ids = [r.label for r in every]
    checks = _checks(every)
    pairs = [_pair(a, b, checks, n_boot, seed) for a, b in combinations(every, 2)]
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "task": every[0].task,
        "n_boot": n_boot, "seed": seed,
        "runs": [_run_entry(r) for r in every],
        "checks": checks,
        "pairs": pairs,
        "passing_every_gate": [r.label for r in every if r.report.get("verdict") == "passed"],
        "pareto": _pareto(every),
        "warnings": warnings,
        "against_released": None,
    }
    if against is not None:
        result["against_released"] = {"subject": runs[0].label, "released": against.label,
                                      "released_path": str(against.path),
                                      "changes": _changes(pairs[0], checks, ids[0], ids[1])}
    return result, warnings


def _run_entry(r: RunRecord) -> dict[str, Any]:
    return {"label": r.label, "run_id": r.run_id, "path": str(r.path), "suite": r.report.get("suite"),
            "verdict": r.report.get("verdict"), "state": r.review_state(),
            "created_at": r.report.get("created_at"), "report_sha256": r.report_sha256,
            "audits": r.audits(), "tuner_options": (r.report.get("tuner") or {}).get("options"),
            "per_row_evidence": r.rows is not None, "per_row_evidence_missing": r.rows_missing,
            "test_rows": len(r.rows) if r.rows is not None else (r.manifest.get("splits") or {}).get("test"),
            "cost": r.cost()}


def _checks(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per gated check any run has: each run's value, CI, status (None where absent)."""
    order: list[str] = []
    for r in runs:
        order += [cid for cid in r.checks() if cid not in order]
    rows = []
    for cid in order:
        audit, metric = cid.split(":", 1)
        values = {}
        op = threshold = None
        for r in runs:
            c = r.checks().get(cid)
            op = op or (c or {}).get("op")
            threshold = threshold if threshold is not None else (c or {}).get("threshold")
            values[r.label] = None if c is None else {k: c.get(k) for k in (
                "value", "ci_low", "ci_high", "status", "threshold", "op", "base_value")}
        rows.append({"id": cid, "audit": audit, "metric": metric, "op": op, "threshold": threshold, "higher_is_better": _higher(metric, op),
                     "runs": values, "paired": paired.pairable(runs[0].task, audit, metric)})
    return rows


def _higher(metric: str, op: str | None) -> bool:
    return op == "min" if op else metric in paired.HIGHER_IS_BETTER


def _fairness_spec(r: RunRecord) -> paired.Fairness | None:
    ev = ((r.report.get("audits") or {}).get("fairness") or {}).get("evidence") or {}
    labels = list(r.report.get("labels") or [])
    if not ev.get("views") or ev.get("positive_label") not in labels:
        return None
    views = [[c.strip() for c in v["name"].split(" & ")] for v in ev["views"] if v.get("gated")]
    return paired.Fairness(views=views, positive=labels.index(ev["positive_label"]))


def _pair(a: RunRecord, b: RunRecord, checks: list[dict[str, Any]], n_boot: int, seed: int) -> dict[str, Any]:
    """``b - a`` for every check both runs have (plus accuracy and macro-F1 / exact match and
    token F1, gated or not), paired on the same resampled rows."""
    entry: dict[str, Any] = {"a": a.label, "b": b.label, "difference": "b - a", "metrics": {}}
    wanted = [c for c in checks if a.label in c["runs"] and c["runs"][a.label] is not None
              and c["runs"][b.label] is not None]
    ids = [c["id"] for c in wanted]
    core = ("accuracy:accuracy", "accuracy:macro_f1") if a.task == "classification" else \
        ("accuracy:exact_match", "accuracy:token_f1")
    extra = [cid for cid in core if cid not in ids and "accuracy" in a.audits() and "accuracy" in b.audits()]
    higher = {c["id"]: c["higher_is_better"] for c in checks}
    missing = a.rows_missing or b.rows_missing
    computed: dict[str, dict[str, np.ndarray]] = {}
    if missing is None and a.rows is not None and b.rows is not None:
        computed = _paired_figures(a, b, n_boot, seed)
    for cid in [*ids, *extra]:
        audit, metric = cid.split(":", 1)
        why = paired.pairable(a.task, audit, metric)
        item: dict[str, Any] = {"higher_is_better": higher.get(cid, metric in paired.HIGHER_IS_BETTER)}
        if why is None and missing is not None:
            why = f"no per-row outcomes: {missing}"
        if why is None:
            fig = computed.get(audit, {}).get(metric)
            if fig is None:
                why = "the per-row outcomes lack what it needs (e.g. base predictions or group columns)"
            else:
                item.update(paired.paired_difference(fig["boot_a"], fig["boot_b"], fig["a"], fig["b"]))
                item.update(value_a=fig["a"], value_b=fig["b"])
                item["verdict"] = _verdict(item, item["higher_is_better"])
        if why is not None:
            item.update(difference=None, ci_low=None, ci_high=None, reason=f"no paired interval: {why}")
        entry["metrics"][cid] = item
    if "accuracy:accuracy" in entry["metrics"] and missing is None and a.task == "classification":
        entry["mcnemar"] = _mcnemar(a, b)
    return entry


def _paired_figures(a: RunRecord, b: RunRecord, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    assert a.rows is not None and b.rows is not None
    rows = a.rows
    n = len(rows)
    clusters = [r.get("cluster") for r in rows]
    w = paired.weights(n, n_boot, seed, None if all(c is None for c in clusters) else clusters)
    one = np.ones((1, n))
    k = max(len(a.report.get("labels") or []), 1)
    groups = [r.get("groups") or {} for r in rows]
    spec_a, spec_b = _fairness_spec(a), _fairness_spec(b)
    spec = spec_a if spec_a is not None and spec_a == spec_b else None
    out_a, out_b = paired.Outcomes.of(a.task, a.rows), paired.Outcomes.of(b.task, b.rows)
    fa, fb = (paired.figures(o, k, w, groups=groups, fairness=spec) for o in (out_a, out_b))
    pa, pb = (paired.figures(o, k, one, groups=groups, fairness=spec) for o in (out_a, out_b))
    found: dict[str, dict[str, Any]] = {}
    for audit in fa:
        for metric in fa[audit]:
            if metric in fb.get(audit, {}):
                found.setdefault(audit, {})[metric] = {
                    "boot_a": fa[audit][metric], "boot_b": fb[audit][metric],
                    "a": float(pa[audit][metric][0]), "b": float(pb[audit][metric][0])}
    return found


def _mcnemar(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    from auditft import stats

    assert a.rows is not None and b.rows is not None
    right_a = np.array([r["adapter"] == r["truth"] for r in a.rows])
    right_b = np.array([r["adapter"] == r["truth"] for r in b.rows])
    test = stats.mcnemar_exact(right_b, right_a)
    return {"test": test["test"], "p_value": test["p_value"], "only_b_correct": test["only_this_correct"],
            "only_a_correct": test["only_other_correct"]}


def _verdict(item: dict[str, Any], higher: bool) -> str:
    low, high = item.get("ci_low"), item.get("ci_high")
    if low is None or high is None:
        return "undefined"
    if low > 0 or high < 0:
        better_b = (low > 0) == higher
        return "b better" if better_b else "a better"
    return "no clear difference"


def _quality(r: RunRecord) -> tuple[str, float] | None:
    """The figure the Pareto view plots: macro-F1 (classification) or token F1 (generation)."""
    metrics = ((r.report.get("audits") or {}).get("accuracy") or {}).get("metrics") or {}
    for name in ("macro_f1", "accuracy", "token_f1", "exact_match"):
        value = (metrics.get(name) or {}).get("value")
        if isinstance(value, (int, float)):
            return name, float(value)
    return None


def _pareto(runs: list[RunRecord]) -> dict[str, Any]:
    """Quality against cost (training seconds): a run is on the front when no other run is at
    least as good on both and better on one."""
    points: list[dict[str, Any]] = []
    placed: list[tuple[float, float]] = []
    for r in runs:
        q, cost = _quality(r), r.cost()
        spend = cost.get("training_seconds")
        if q is not None and isinstance(spend, (int, float)):
            placed.append((q[1], float(spend)))
            points.append({"run": r.label, "tuner": cost.get("tuner"), "metric": q[0], "quality": q[1],
                           "cost": float(spend), "trainable_parameters": cost.get("trainable_parameters"),
                           "passed": r.report.get("verdict") == "passed"})
    for i, (quality, spend) in enumerate(placed):
        points[i]["front"] = not any(j != i and oq >= quality and oc <= spend and (oq > quality or oc < spend)
                                     for j, (oq, oc) in enumerate(placed))
    return {"quality": points[0]["metric"] if points else None, "cost": "training seconds", "points": points}


def _changes(pair: dict[str, Any], checks: list[dict[str, Any]], released: str, subject: str) -> list[dict[str, Any]]:
    """Check by check, released -> this run: status, value, and the paired difference."""
    out = []
    for c in checks:
        before, after = c["runs"].get(released), c["runs"].get(subject)
        diff = pair["metrics"].get(c["id"], {})
        status = (None if before is None else before.get("status"), None if after is None else after.get("status"))
        out.append({"id": c["id"], "status_released": status[0], "status_now": status[1],
                    "value_released": None if before is None else before.get("value"),
                    "value_now": None if after is None else after.get("value"),
                    "difference": diff.get("difference"), "ci_low": diff.get("ci_low"), "ci_high": diff.get("ci_high"),
                    "verdict": diff.get("verdict"), "reason": diff.get("reason"),
                    "change": "new check" if before is None else "dropped" if after is None
                    else "status changed" if status[0] != status[1] else "same status"})
    return out


def write_comparison(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``compare.json`` and ``compare.html`` into ``out`` (created); returns both paths."""
    from auditft.compare.page import render
    from auditft.fsutil import atomic_write_json, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", result)
    atomic_write_text(out / "compare.html", render(result))
    return out / "compare.json", out / "compare.html"
