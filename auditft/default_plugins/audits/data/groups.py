"""Representation: training rows per group, per intersection of the group columns, and per
label within each; small groups and missing labels are flagged."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import product
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.data.findings import Findings
from auditft.records import Metric

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.data.options import DataOptions
    from auditft.jobs import AuditJob


@dataclass
class GroupCount:
    view: str  # a column name, or "a & b" for the intersection
    label: str  # "sex=female", or "sex=female & band=old"
    count: int
    labels: dict[str, int]  # rows per class (classification)
    small: bool


def representation(groups: Sequence[dict[str, str]], columns: Sequence[str], minimum: int,
                   labels: Sequence[int | None] | None = None,
                   label_names: Sequence[str] = ()) -> dict[str, Any]:
    """Rows per group, per intersection of all group columns, and per label within each.

    Only combinations that occur are counted; ``absent`` lists the combinations of observed
    values that never occur (the data cannot say whether they exist in the population)."""
    def name(k: int | None) -> str:
        return label_names[k] if k is not None and 0 <= k < len(label_names) else str(k)

    out: dict[str, Any] = {"columns": [], "intersections": [], "absent": [], "overall_labels": {}}
    if labels is not None:
        out["overall_labels"] = dict(sorted(Counter(name(k) for k in labels).items()))
    views: list[tuple[str, list[str]]] = [(c, [c]) for c in columns]
    if len(columns) > 1:
        views.append((" & ".join(columns), list(columns)))
    for view, cols in views:
        keys = [" & ".join(f"{c}={g.get(c, '(missing)')}" for c in cols) for g in groups]
        counts = Counter(keys)
        per_label: dict[str, Counter[str]] = defaultdict(Counter)
        if labels is not None:
            for key, k in zip(keys, labels):
                per_label[key][name(k)] += 1
        rows = [GroupCount(view, key, n, dict(sorted(per_label[key].items())), n < minimum)
                for key, n in sorted(counts.items())]
        out["intersections" if len(cols) > 1 else "columns"].extend(rows)
        if len(cols) > 1:
            values = [sorted({g.get(c, "(missing)") for g in groups}) for c in cols]
            combos = (" & ".join(f"{c}={v}" for c, v in zip(cols, combo)) for combo in product(*values))
            out["absent"] = [key for key in combos if key not in counts][:200]
    return out


def check_groups(job: AuditJob, rows: list[Example], out: Findings, options: DataOptions) -> None:
    """The audit step: ``min_label_share``, ``min_group_count``, ``min_intersection_count`` and the
    counts behind them."""
    opts = options
    columns = list(job.data.group_columns)
    classification = job.task == "classification"
    labels = [ex.label for ex in rows] if classification else None
    n = len(rows)
    per_label = {name: sum(1 for ex in rows if ex.label == i) for i, name in enumerate(job.data.labels)}
    if classification:  # a declared label without rows has share 0
        out.metrics["min_label_share"] = Metric(value=min(per_label.values()) / n, n=n)
    if not columns:
        out.notes.append("Representation: the suite sets no data.group_columns; only label balance is shown.")
        out.evidence["groups"] = {"columns": [], "intersections": [], "absent": [], "small": [],
                                  "overall_labels": per_label, "missing_labels": []}
        return
    rep = representation([ex.groups for ex in rows], columns, opts.min_group_count, labels,
                         list(job.data.labels))
    groups = [asdict(g) for g in rep["columns"]]
    cells = [asdict(g) for g in rep["intersections"]]
    out.metrics["min_group_count"] = Metric(value=float(min(g["count"] for g in groups)), n=n, min_n=1)
    if cells:
        out.metrics["min_intersection_count"] = Metric(value=float(min(g["count"] for g in cells)), n=n, min_n=1)
    small = [g for g in groups + cells if g["small"]]
    one_label = [g["label"] for g in groups + cells
                 if classification and sum(1 for v in g["labels"].values() if v) < len(job.data.labels)]
    out.evidence["groups"] = {"min_group_count": opts.min_group_count, "columns": groups, "intersections": cells,
                              "absent": rep["absent"], "overall_labels": rep["overall_labels"],
                              "small": [{"label": g["label"], "count": g["count"]} for g in small],
                              "missing_labels": one_label}
    out.notes.append(
        "Representation: min_group_count is the smallest group of any single group column; "
        "min_intersection_count the smallest combination of all group columns that occurs (combinations that "
        f"never occur are listed as absent, not counted). Every group or intersection under "
        f"{opts.min_group_count} training rows is flagged"
        + (": " + ", ".join(f"{g['label']} (n={g['count']})" for g in small[:20]) + "." if small else "; none is."))
    if one_label:
        out.notes.append(f"{len(one_label)} group(s) or intersections lack at least one label entirely: "
                         + ", ".join(one_label[:20]) + ".")
