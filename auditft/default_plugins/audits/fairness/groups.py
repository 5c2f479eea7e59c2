"""Classification half of the ``fairness`` audit: per-group figures for every view (the
adapter's from fairlearn's ``MetricFrame``, the base model's linear probe from the same rates),
paired bootstrap CIs, the corrected "is this group worse than the rest?" test, and the gate
metrics as the worst case over the gated views.

Imported only when the audit runs (it pulls in numpy, scipy and fairlearn).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from auditft.default_plugins.audits.fairness import stats as fs
from auditft.default_plugins.audits.fairness.frames import GroupFrame, fairlearn_cis
from auditft.default_plugins.audits.fairness.metrics import AGGREGATES, to_metric
from auditft.inference import labels_of
from auditft.records import Metric
from auditft.records import finite_or_none as _num

if TYPE_CHECKING:
    from auditft.default_plugins.audits.fairness.options import FairnessOptions
    from auditft.default_plugins.audits.fairness.stats import View
    from auditft.jobs import AuditJob

BASELINE_NOTE = (
    "Base model figures come from a linear probe: logistic regression on the frozen base "
    "model's mean-pooled embeddings, fitted on the same train split as the adapter."
)

#: a gated group in the tested family: (its evidence entry, count, adapter correct, base correct)
Tested = tuple[dict[str, Any], int, int, int]


def positive_index(labels: list[str], wanted: str | None) -> int:
    """Index of the label whose selection rate / TPR / FPR is compared (``labels[1]`` unless
    ``positive_label`` names another)."""
    if wanted is None:
        if len(labels) < 2:
            raise ValueError("the fairness audit needs at least two labels")
        return 1
    if wanted not in labels:
        raise ValueError(f"positive_label {wanted!r} is not one of the labels {labels}")
    return labels.index(wanted)


@dataclass(frozen=True)
class Rows:
    """The test rows as the statistics see them, and the same arrays on the bootstrap
    resamples (``boot``, each (n_boot, n)): adapter and base share the resampled rows, so
    per-group regressions are paired."""

    y: np.ndarray
    pred: np.ndarray
    y_pos: np.ndarray  # true label is the positive label
    p_pos: np.ndarray  # the adapter predicts it
    b_pos: np.ndarray  # the base model predicts it
    correct: np.ndarray
    base_correct: np.ndarray
    idx: np.ndarray  # (n_boot, n) resampled row indices
    boot: dict[str, np.ndarray]

    @classmethod
    def of(cls, y: np.ndarray, pred: np.ndarray, base_pred: np.ndarray, pos: int, idx: np.ndarray) -> Rows:
        y_pos, p_pos, b_pos = y == pos, pred == pos, base_pred == pos
        correct, base_correct = pred == y, base_pred == y
        boot = {"y_pos": y_pos[idx], "p_pos": p_pos[idx], "b_pos": b_pos[idx], "correct": correct[idx],
                "base_correct": base_correct[idx]}
        return cls(y, pred, y_pos, p_pos, b_pos, correct, base_correct, idx, boot)

    @property
    def n(self) -> int:
        return len(self.y)


@dataclass
class ViewFigures:
    """One view's evidence row plus what the gate needs from it."""

    row: dict[str, Any]
    tested: list[Tested]
    point: dict[str, float]
    base: dict[str, float]
    boot: dict[str, np.ndarray]


def _view_figures(view: View, is_gated: bool, rows: Rows, pos: int, options: FairnessOptions,
                  seed: int) -> ViewFigures:
    frame = GroupFrame(view, rows.y, rows.pred, pos)  # the adapter's gated figures: fairlearn
    point = fs.group_rates(view.codes, view.size, rows.y_pos, rows.p_pos, rows.correct)
    base_point = fs.group_rates(view.codes, view.size, rows.y_pos, rows.b_pos, rows.base_correct)
    codes, rb = view.codes[rows.idx], rows.boot
    boot = fs.group_rates(codes, view.size, rb["y_pos"], rb["p_pos"], rb["correct"])
    base_boot = fs.group_rates(codes, view.size, rb["y_pos"], rb["b_pos"], rb["base_correct"])
    if options.per_group_ci == "fairlearn":
        cis = fairlearn_cis(view, rows.y, rows.pred, pos, options.n_boot, seed)
    else:
        cis = {name: fs.percentile_ci(boot[name]) for name in fs.RATES}
    drop_lo, drop_hi = fs.percentile_ci(base_boot["accuracy"] - boot["accuracy"])
    aggregates = frame.aggregates(float(np.asarray(fs.aggregates(point, base_point)["max_group_regression"])))
    base_aggregates = {k: float(v) for k, v in fs.aggregates(base_point, base_point).items()}
    boot_aggregates = fs.aggregates(boot, base_boot)
    groups = []
    tested: list[Tested] = []
    for g, label in enumerate(view.labels):
        row = frame.loc[label]
        count = int(row["count"])
        entry = {
            "label": label, "view": view.name, "count": count,
            "small": count < options.min_group_size, "gated": is_gated,
            **{name: _num(row[name]) for name in fs.RATES},
            **{f"{name}_ci": [_num(cis[name][0][g]), _num(cis[name][1][g])] for name in fs.RATES},
            **{f"base_{name}": _num(base_point[name][g]) for name in fs.RATES},
            "accuracy_delta": _num(row["accuracy"] - base_point["accuracy"][g]),
            "drop": _num(base_point["accuracy"][g] - row["accuracy"]),
            "drop_ci": [_num(drop_lo[g]), _num(drop_hi[g])],
            "p_value": None, "p_adjusted": None, "flagged": False, "base_flagged": False,
        }
        groups.append(entry)
        if is_gated:
            in_group = view.codes == g
            tested.append((entry, count, int(rows.correct[in_group].sum()), int(rows.base_correct[in_group].sum())))
    view_row = {
        "name": view.name, "kind": view.kind, "gated": is_gated, "groups": groups,
        "aggregates": {name: {"value": _num(aggregates[name]), "base_value": _num(base_aggregates[name]),
                              "ci": [_num(x) for x in fs.percentile_ci(boot_aggregates[name])]}
                       for name in AGGREGATES},
    }
    return ViewFigures(view_row, tested, aggregates, base_aggregates, boot_aggregates)


def _flag_groups(family: list[Tested], rows: Rows, options: FairnessOptions) -> tuple[list[str], int, int]:
    """One-sided "worse than the rest" test per gated group, corrected across the family;
    marks each entry and returns (flagged labels, base model's flag count, groups tested)."""
    total_correct, total_base_correct = int(rows.correct.sum()), int(rows.base_correct.sum())
    tested: list[tuple[dict[str, Any], float, float]] = []
    for entry, count, correct, base_correct in family:
        p = fs.below_rest_pvalue(correct, count, total_correct, rows.n)
        base_p = fs.below_rest_pvalue(base_correct, count, total_base_correct, rows.n)
        if p is not None and base_p is not None:  # both None together: the group is empty or every row
            tested.append((entry, p, base_p))
    adjust = fs.CORRECTIONS[options.correction]
    adjusted = adjust([p for _, p, _ in tested])
    base_adjusted = adjust([bp for _, _, bp in tested])
    for (entry, p, _), adj, base_adj in zip(tested, adjusted, base_adjusted):
        entry.update(p_value=_num(p), p_adjusted=_num(adj), flagged=adj < options.alpha,
                     base_flagged=base_adj < options.alpha)
    flagged = [entry["label"] for entry, _, _ in tested if entry["flagged"]]
    base_flagged = sum(1 for entry, _, _ in tested if entry["base_flagged"])
    return flagged, base_flagged, len(tested)


def _worst(per_view: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return fs.worst([{k: np.asarray(v[k], dtype=float) for k in AGGREGATES} for v in per_view])


def _gate_metrics(gated: list[ViewFigures], smallest: int, flagged: list[str], base_flagged: int,
                  options: FairnessOptions) -> dict[str, Metric]:
    """Worst case over the gated views; every metric carries ``min_group_size`` as its floor."""
    point_worst = _worst([v.point for v in gated])
    base_worst = _worst([v.base for v in gated])
    boot_worst = fs.worst([v.boot for v in gated])
    metrics: dict[str, Metric] = {}
    for name in AGGREGATES:
        metrics[name] = replace(to_metric(point_worst[name], fs.percentile_ci(boot_worst[name]), n=smallest,
                                          base=base_worst[name]), min_n=options.min_group_size)
    metrics["flagged_groups"] = Metric(value=float(len(flagged)), n=smallest, base_value=float(base_flagged),
                                       min_n=options.min_group_size)
    return metrics


def audit_groups(job: AuditJob, options: FairnessOptions) -> tuple[dict[str, Metric], dict[str, Any], list[str]]:
    """The classification audit: (metrics, evidence, notes)."""
    test = job.data.test
    labels = list(job.data.labels)
    columns = list(job.data.group_columns)
    if not columns:
        raise ValueError("the fairness audit needs data.group_columns; the suite sets none")
    if not test:
        raise ValueError("the fairness audit needs a non-empty test split")
    pos = positive_index(labels, options.positive_label)
    y = labels_of(test)
    pred = np.asarray(job.models.adapter_proba("test")).argmax(axis=1)
    base_pred = np.asarray(job.models.base_probe_proba("test")).argmax(axis=1)
    rows = Rows.of(y, pred, base_pred, pos, fs.bootstrap_indices(len(y), options.n_boot, job.seed))
    views = fs.build_views([ex.groups for ex in test], columns)
    gated = [v.kind == "column" or options.gate_intersections for v in views]
    figures = [_view_figures(view, is_gated, rows, pos, options, job.seed) for view, is_gated in zip(views, gated)]
    view_rows = [f.row for f in figures]
    flagged, base_flagged, tested = _flag_groups([t for f in figures for t in f.tested], rows, options)

    gated_groups = [g for v in view_rows if v["gated"] for g in v["groups"]]
    smallest = min(g["count"] for g in gated_groups)
    small = [g for g in gated_groups if g["small"]]
    metrics = _gate_metrics([f for f in figures if f.row["gated"]], smallest, flagged, base_flagged, options)
    evidence = {
        "task": "classification", "labels": labels, "positive_label": labels[pos],
        "one_vs_rest": len(labels) > 2, "n": rows.n, "overall": _overall(rows),
        "min_group_size": options.min_group_size, "n_boot": options.n_boot, "per_group_ci": options.per_group_ci,
        "correction": options.correction, "alpha": options.alpha, "tested_groups": tested,
        "gate_views": [v["name"] for v in view_rows if v["gated"]],
        "views": view_rows,
        "insufficient_groups": [{"label": g["label"], "view": g["view"], "count": g["count"]} for g in small],
        "small_groups": [{"label": g["label"], "view": g["view"], "count": g["count"], "gated": g["gated"]}
                         for v in view_rows for g in v["groups"] if g["small"]],
        "flagged": flagged,
        "regressions": _regressions(view_rows),
    }
    return metrics, evidence, _notes(labels, pos, views, gated, small, tested, options)


def _overall(rows: Rows) -> dict[str, float | None]:
    y_pos, p_pos = rows.y_pos, rows.p_pos
    return {"accuracy": _num(rows.correct.mean()), "base_accuracy": _num(rows.base_correct.mean()),
            "selection_rate": _num(p_pos.mean()), "base_selection_rate": _num(rows.b_pos.mean()),
            "tpr": _num(p_pos[y_pos].mean()) if y_pos.any() else None,
            "fpr": _num(p_pos[~y_pos].mean()) if (~y_pos).any() else None}


def _regressions(view_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every group (any view) less accurate than with the base model, largest drop first."""
    return sorted(({"label": g["label"], "view": g["view"], "count": g["count"], "small": g["small"],
                    "accuracy": g["accuracy"], "base_accuracy": g["base_accuracy"], "drop": g["drop"],
                    "drop_ci": g["drop_ci"]}
                   for v in view_rows for g in v["groups"] if (g["drop"] or 0) > 0),
                  key=lambda r: (-r["drop"], r["label"]))


def _notes(labels: list[str], pos: int, views: list[View], gated: list[bool], small: list[dict[str, Any]],
           tested: int, options: FairnessOptions) -> list[str]:
    notes = [f"Positive label: {labels[pos]!r}"
             + (" (one-vs-rest: selection rate, TPR and FPR compare it with all other labels)."
                if len(labels) > 2 else ".")]
    gate_views = [v.name for v, g in zip(views, gated) if g]
    shown_only = [v.name for v, g in zip(views, gated) if not g]
    notes.append("Gate metrics are the worst case over the views " + ", ".join(gate_views) + "."
                 + (f" The intersectional view ({', '.join(shown_only)}) is shown but not gated "
                    "(option gate_intersections)." if shown_only else ""))
    if small:
        listed = ", ".join(f"{g['label']} (n={g['count']})" for g in small)
        notes.append(f"{len(small)} gated group(s) have fewer than {options.min_group_size} examples: {listed}. "
                     "Every group metric reports n = the smallest gated group, so its checks are "
                     "insufficient, never a silent pass.")
    notes.append(f"Per-group test: one-sided Fisher exact test that the group's accuracy is below the "
                 f"other rows'; {tested} gated groups tested, p-values adjusted with "
                 f"{fs.CORRECTION_NAMES[options.correction]} ('{options.correction}'); flagged when adjusted "
                 f"p < {options.alpha:g}.")
    notes.append(f"95% CIs: percentile bootstrap over test rows, {options.n_boot} resamples, seeded; adapter "
                 "and base resampled on the same rows (per-group regressions are paired). "
                 "Undefined rates (TPR without positives, FPR without negatives) are left out. Resampled "
                 "max-minus-min differences lean high, so the gate's upper bound errs on the safe side.")
    notes.append("max_group_regression is the largest per-group accuracy drop, base minus adapter "
                 "(positive = worse than base); its base value is 0 by definition.")
    notes.append(BASELINE_NOTE)
    return notes
