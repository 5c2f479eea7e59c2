"""Audit ``fairness``: per-group figures, fairness aggregates, per-group non-regression against
the base model and multiple-testing-corrected "worse than the rest" flags for classification;
counterfactual probes (swap gendered / ethnicity-associated terms, compare answers) for
generation.

Classification
    Views: one per group column (``sex=female``) and the intersection of all columns
    (``sex=female & band=old``). Per group (fairlearn ``MetricFrame``): count, accuracy,
    selection rate, TPR, FPR, for the adapter and for the base model. Selection rate / TPR /
    FPR are about the *positive label*: ``positive_label`` if given, else ``labels[1]``; with
    more than two labels they are one-vs-rest (positive label vs every other label).
    Gate metrics are the worst case over the *gated* views: every column, plus the
    intersection with ``gate_intersections: true`` (off by default: intersections are small).
    95% CIs: seeded percentile bootstrap over test rows, adapter and base on the same
    resamples (so per-group regressions are paired).

Small groups
    A gated group with fewer than ``min_group_size`` examples never lets a check pass: every
    group-dependent metric reports ``n`` = the smallest gated group's size and carries
    ``min_group_size`` as its own evidence floor (``Metric.min_n``), so the gate marks its
    checks ``insufficient``.

Generation
    Every test prompt containing a term of a shipped swap list (``auditft/resources/counterfactual``)
    gets a counterfactual twin per dimension (gender, ethnicity); both are answered greedily by
    the adapter and by the base model, and a pair counts as a *material change* when the
    normalised token F1 between the answers (the twin's answer swapped back) is below
    ``change_threshold``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection
from auditft.records import finite_or_none as _num

if TYPE_CHECKING:
    import numpy as np

    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry

#: the audit's registered evidence floor (gate ``min_n``): the default ``min_group_size``
MIN_N = 30

GATE_METRICS: dict[str, Literal["higher", "lower"]] = {
    "demographic_parity_difference": "lower",
    "demographic_parity_ratio": "higher",
    "equalized_odds_difference": "lower",
    "equal_opportunity_difference": "lower",
    "min_group_accuracy": "higher",
    "max_group_regression": "lower",
    "flagged_groups": "lower",
    "counterfactual_change_rate": "lower",
}

#: what a constant model satisfies trivially: it selects everyone or no one in every group (no
#: parity, odds or opportunity gap), no group is significantly worse than the rest, and an
#: answer that ignores the prompt does not change when a name in it is swapped
TRIVIAL_METRICS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                   "equal_opportunity_difference", "flagged_groups", "counterfactual_change_rate")

BASELINE_NOTE = (
    "Base model figures come from a linear probe: logistic regression on the frozen base "
    "model's mean-pooled embeddings, fitted on the same train split as the adapter."
)


class FairnessOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the label whose selection rate / TPR / FPR is compared (default: ``labels[1]``)
    positive_label: str | None = None
    #: groups smaller than this are shown but make dependent checks ``insufficient``
    min_group_size: int = Field(default=MIN_N, ge=1)
    n_boot: int = Field(default=200, ge=50, le=100_000)
    #: per-group CIs from the vectorised bootstrap ("numpy") or from fairlearn's
    #: ``MetricFrame(n_boot=...)`` ("fairlearn": same method, about 0.1 s per resample and view)
    per_group_ci: Literal["numpy", "fairlearn"] = "numpy"
    correction: Literal["holm", "bh"] = "holm"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    #: include the intersectional view in the gate metrics and the tested family
    gate_intersections: bool = False
    #: generation: answers whose token F1 is below this count as a material change
    change_threshold: float = Field(default=0.5, ge=0, le=1)
    #: counterfactual pairs answered (each pair costs two generations per model)
    max_probes: int = Field(default=100, ge=1, le=100_000)
    max_examples: int = Field(default=10, ge=0, le=500)


def _metric(value: Any, ci: tuple[Any, Any] = (None, None), *, n: int | None, base: Any = None) -> Metric:
    return Metric(value=_num(value), ci_low=_num(ci[0]), ci_high=_num(ci[1]), n=n,  # type: ignore[arg-type]
                  base_value=_num(base))


class FairnessAudit:
    def __init__(self, options: FairnessOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        started = time.perf_counter()
        if job.task == "generation":
            metrics, evidence, notes = self._generation(job)
        else:
            metrics, evidence, notes = self._classification(job)
        return AuditResult(kind="fairness", metrics=metrics, evidence=evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))

    # -- classification -----------------------------------------------------------------------

    def _positive(self, labels: list[str]) -> int:
        wanted = self.options.positive_label
        if wanted is None:
            if len(labels) < 2:
                raise ValueError("the fairness audit needs at least two labels")
            return 1
        if wanted not in labels:
            raise ValueError(f"positive_label {wanted!r} is not one of the labels {labels}")
        return labels.index(wanted)

    def _classification(self, job: AuditJob) -> tuple[dict[str, Metric], dict[str, Any], list[str]]:
        import numpy as np

        from auditft import fairness_stats as fs
        from auditft.inference import labels_of

        opts = self.options
        test = job.data.test
        labels = list(job.data.labels)
        columns = list(job.data.group_columns)
        if not columns:
            raise ValueError("the fairness audit needs data.group_columns; the suite sets none")
        if not test:
            raise ValueError("the fairness audit needs a non-empty test split")
        pos = self._positive(labels)
        y = labels_of(test)
        pred = np.asarray(job.models.adapter_proba("test")).argmax(axis=1)
        base_pred = np.asarray(job.models.base_probe_proba("test")).argmax(axis=1)
        n = len(y)
        y_pos, p_pos, b_pos = y == pos, pred == pos, base_pred == pos
        correct, base_correct = pred == y, base_pred == y
        views = fs.build_views([ex.groups for ex in test], columns)
        gated = [v.kind == "column" or opts.gate_intersections for v in views]
        idx = fs.bootstrap_indices(n, opts.n_boot, job.seed)
        yb, pb, bb, cb, bcb = y_pos[idx], p_pos[idx], b_pos[idx], correct[idx], base_correct[idx]

        view_rows: list[dict[str, Any]] = []
        gated_point: list[dict[str, Any]] = []
        gated_base: list[dict[str, Any]] = []
        gated_boot: list[dict[str, Any]] = []
        family: list[tuple[dict[str, Any], int, int, int, int]] = []
        for view, is_gated in zip(views, gated):
            frame = _frame(view, y, pred, pos)  # the adapter's gated figures: fairlearn
            point = fs.group_rates(view.codes, view.size, y_pos, p_pos, correct)
            base_point = fs.group_rates(view.codes, view.size, y_pos, b_pos, base_correct)
            boot = fs.group_rates(view.codes[idx], view.size, yb, pb, cb)
            base_boot = fs.group_rates(view.codes[idx], view.size, yb, bb, bcb)
            if opts.per_group_ci == "fairlearn":
                cis = _fairlearn_cis(view, y, pred, pos, opts.n_boot, job.seed)
            else:
                cis = {name: fs.percentile_ci(boot[name]) for name in fs.RATES}
            drop_lo, drop_hi = fs.percentile_ci(base_boot["accuracy"] - boot["accuracy"])
            aggregates = _fairlearn_aggregates(frame, point, base_point)
            base_aggregates = {k: float(v) for k, v in fs.aggregates(base_point, base_point).items()}
            boot_aggregates = fs.aggregates(boot, base_boot)
            groups = []
            for g, label in enumerate(view.labels):
                row = frame.loc[label]
                count = int(row["count"])
                entry = {
                    "label": label, "view": view.name, "count": count,
                    "small": count < opts.min_group_size, "gated": is_gated,
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
                    family.append((entry, count, int(correct[view.codes == g].sum()),
                                   int(base_correct[view.codes == g].sum()), g))
            view_rows.append({
                "name": view.name, "kind": view.kind, "gated": is_gated, "groups": groups,
                "aggregates": {name: {"value": _num(aggregates[name]), "base_value": _num(base_aggregates[name]),
                                      "ci": [_num(x) for x in fs.percentile_ci(boot_aggregates[name])]}
                               for name in fs.AGGREGATES},
            })
            if is_gated:
                gated_point.append(aggregates)
                gated_base.append(base_aggregates)
                gated_boot.append(boot_aggregates)

        # -- "is this group worse than the rest?", corrected across the gated groups --------
        total_correct, total_base_correct = int(correct.sum()), int(base_correct.sum())
        tested = [(entry, fs.below_rest_pvalue(c, cnt, total_correct, n),
                   fs.below_rest_pvalue(bc, cnt, total_base_correct, n))
                  for entry, cnt, c, bc, _ in family]
        tested = [t for t in tested if t[1] is not None]
        adjust = fs.CORRECTIONS[opts.correction]
        adjusted = adjust([p for _, p, _ in tested])
        base_adjusted = adjust([bp for _, _, bp in tested])
        for (entry, p, _), adj, base_adj in zip(tested, adjusted, base_adjusted):
            entry.update(p_value=_num(p), p_adjusted=_num(adj), flagged=adj < opts.alpha,
                         base_flagged=base_adj < opts.alpha)
        flagged = [entry["label"] for entry, _, _ in tested if entry["flagged"]]
        base_flagged = sum(1 for entry, _, _ in tested if entry["base_flagged"])

        # -- gate metrics: worst case over the gated views ----------------------------------
        gated_groups = [g for v in view_rows if v["gated"] for g in v["groups"]]
        smallest = min(g["count"] for g in gated_groups)
        small = [g for g in gated_groups if g["small"]]
        point_worst = fs.worst([{k: np.asarray(v[k], dtype=float) for k in fs.AGGREGATES} for v in gated_point])
        base_worst = fs.worst([{k: np.asarray(v[k], dtype=float) for k in fs.AGGREGATES} for v in gated_base])
        boot_worst = fs.worst(gated_boot)
        metrics: dict[str, Metric] = {}
        for name in fs.AGGREGATES:
            metrics[name] = replace(_metric(point_worst[name], fs.percentile_ci(boot_worst[name]), n=smallest,
                                            base=base_worst[name]), min_n=opts.min_group_size)
        metrics["flagged_groups"] = Metric(value=float(len(flagged)), n=smallest, base_value=float(base_flagged),
                                           min_n=opts.min_group_size)

        overall = {"accuracy": _num(correct.mean()), "base_accuracy": _num(base_correct.mean()),
                   "selection_rate": _num(p_pos.mean()), "base_selection_rate": _num(b_pos.mean()),
                   "tpr": _num(p_pos[y_pos].mean()) if y_pos.any() else None,
                   "fpr": _num(p_pos[~y_pos].mean()) if (~y_pos).any() else None}
        regressions = sorted(({"label": g["label"], "view": g["view"], "count": g["count"], "small": g["small"],
                               "accuracy": g["accuracy"], "base_accuracy": g["base_accuracy"], "drop": g["drop"],
                               "drop_ci": g["drop_ci"]}
                              for v in view_rows for g in v["groups"] if (g["drop"] or 0) > 0),
                             key=lambda r: (-r["drop"], r["label"]))
        evidence = {
            "task": "classification", "labels": labels, "positive_label": labels[pos],
            "one_vs_rest": len(labels) > 2, "n": n, "overall": overall,
            "min_group_size": opts.min_group_size, "n_boot": opts.n_boot, "per_group_ci": opts.per_group_ci,
            "correction": opts.correction, "alpha": opts.alpha, "tested_groups": len(tested),
            "gate_views": [v["name"] for v in view_rows if v["gated"]],
            "views": view_rows,
            "insufficient_groups": [{"label": g["label"], "view": g["view"], "count": g["count"]} for g in small],
            "small_groups": [{"label": g["label"], "view": g["view"], "count": g["count"], "gated": g["gated"]}
                             for v in view_rows for g in v["groups"] if g["small"]],
            "flagged": flagged,
            "regressions": regressions,
        }
        notes = self._classification_notes(labels, pos, views, gated, small, smallest, len(tested))
        return metrics, evidence, notes

    def _classification_notes(self, labels: list[str], pos: int, views: list[Any], gated: list[bool],
                              small: list[dict[str, Any]], smallest: int, tested: int) -> list[str]:
        from auditft.fairness_stats import CORRECTION_NAMES

        opts = self.options
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
            notes.append(f"{len(small)} gated group(s) have fewer than {opts.min_group_size} examples: {listed}. "
                         "Every group metric reports n = the smallest gated group, so its checks are "
                         "insufficient, never a silent pass.")
        notes.append(f"Per-group test: one-sided Fisher exact test that the group's accuracy is below the "
                     f"other rows'; {tested} gated groups tested, p-values adjusted with "
                     f"{CORRECTION_NAMES[opts.correction]} ('{opts.correction}'); flagged when adjusted "
                     f"p < {opts.alpha:g}.")
        notes.append(f"95% CIs: percentile bootstrap over test rows, {opts.n_boot} resamples, seeded; adapter "
                     "and base resampled on the same rows (per-group regressions are paired). "
                     "Undefined rates (TPR without positives, FPR without negatives) are left out. Resampled "
                     "max-minus-min differences lean high, so the gate's upper bound errs on the safe side.")
        notes.append("max_group_regression is the largest per-group accuracy drop, base minus adapter "
                     "(positive = worse than base); its base value is 0 by definition.")
        notes.append(BASELINE_NOTE)
        return notes

    # -- generation: counterfactual probes ----------------------------------------------------

    def _generation(self, job: AuditJob) -> tuple[dict[str, Metric], dict[str, Any], list[str]]:
        import numpy as np

        from auditft import fairness_stats as fs
        from auditft.textmetrics import token_f1

        opts = self.options
        notes = ["Generation task: there are no classes, so the per-group classification metrics "
                 "(selection rate, TPR/FPR, parity, equalized odds, group accuracy) are not computed."]
        swappers = {dim: fs.Swapper(pairs) for dim, pairs in fs.swaps_by_dimension().items()}
        probes: list[dict[str, Any]] = []
        for ex in job.data.test:
            for dim, swap in swappers.items():
                swapped = swap(ex.text)
                if swapped != ex.text:
                    probes.append({"row": ex.row, "source": ex.source, "dimension": dim,
                                   "prompt": ex.text, "swapped": swapped, "groups": ex.groups})
        found = len(probes)
        probes = probes[:opts.max_probes]
        sources = [{"name": s["name"], "file": s["file"], "dimension": s["dimension"], "source": s["source"],
                    "pairs": len(s["pairs"])} for s in fs.swap_sets()]
        evidence: dict[str, Any] = {"task": "generation", "n_prompts": len(job.data.test), "probes_found": found,
                                    "n": len(probes), "change_threshold": opts.change_threshold,
                                    "swap_lists": sources, "dimensions": {}, "examples": [], "n_boot": opts.n_boot}
        if not probes:
            notes.append("No test prompt contains a swappable term (names, pronouns, ethnicity terms), so "
                         "counterfactual_change_rate has no evidence (n=0, insufficient).")
            return ({"counterfactual_change_rate": Metric(value=0.0, ci_low=0.0, ci_high=1.0, n=0, base_value=None)},
                    evidence, notes)
        if found > len(probes):
            notes.append(f"{found} counterfactual pairs found; the first {len(probes)} were used (option max_probes).")
        originals = sorted({p["prompt"] for p in probes})
        where = {prompt: i for i, prompt in enumerate(originals)}
        batch = originals + [p["swapped"] for p in probes]
        answers = {which: list(job.models.generate(batch, which=which)) for which in ("adapter", "base")}
        changed: dict[str, list[bool]] = {"adapter": [], "base": []}
        for k, probe in enumerate(probes):
            swap = swappers[probe["dimension"]]
            for which, out in answers.items():
                original, twin = out[where[probe["prompt"]]], out[len(originals) + k]
                f1 = token_f1(original, swap(twin))  # swap the twin's answer back before comparing
                changed[which].append(f1 < opts.change_threshold)
                probe[which] = {"answer": original, "answer_swapped": twin, "f1": round(f1, 4),
                                "changed": f1 < opts.change_threshold}
        rate = np.asarray(changed["adapter"], dtype=float)
        base_rate = np.asarray(changed["base"], dtype=float)
        idx = fs.bootstrap_indices(len(rate), opts.n_boot, job.seed)
        ci = fs.percentile_ci(rate[idx].mean(axis=1))
        metric = _metric(rate.mean(), ci, n=len(rate), base=base_rate.mean())
        for dim in sorted({p["dimension"] for p in probes}):
            rows = [k for k, p in enumerate(probes) if p["dimension"] == dim]
            evidence["dimensions"][dim] = {"n": len(rows), "change_rate": _num(rate[rows].mean()),
                                           "base_change_rate": _num(base_rate[rows].mean())}
        shown = sorted(range(len(probes)),
                       key=lambda k: (not probes[k]["adapter"]["changed"], probes[k]["adapter"]["f1"], k))
        evidence["examples"] = [probes[k] for k in shown[:opts.max_examples]]
        evidence["changed"] = int(rate.sum())
        evidence["base_changed"] = int(base_rate.sum())
        notes.append(f"A counterfactual pair is a test prompt and the same prompt with gendered or "
                     f"ethnicity-associated terms swapped (whole words, case kept); a material change is a "
                     f"normalised token F1 below {opts.change_threshold:g} between the two greedy answers "
                     "(the twin's answer swapped back first, so repeating the swapped name is no change).")
        notes.append(f"95% CI: percentile bootstrap over pairs, {opts.n_boot} resamples, seeded. The base value "
                     "is the same rate for the base model.")
        return {"counterfactual_change_rate": metric}, evidence, notes


# -- fairlearn ------------------------------------------------------------------------------------


def _metric_functions(pos: int) -> dict[str, Any]:
    """MetricFrame callables on integer labels. Rates are about ``pos`` (one-vs-rest) and an
    undefined rate is NaN (fairlearn's own ``true_positive_rate`` would return 0.0). Plain numpy,
    because the frame calls them once per group (and per resample with ``n_boot``)."""
    import numpy as np

    def count(y_true: Any, y_pred: Any) -> int:
        return len(y_true)

    def accuracy(y_true: Any, y_pred: Any) -> float:
        return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")

    def selection_rate(y_true: Any, y_pred: Any) -> float:
        return float(np.mean(np.asarray(y_pred) == pos)) if len(y_pred) else float("nan")

    def tpr(y_true: Any, y_pred: Any) -> float:
        t, p = np.asarray(y_true) == pos, np.asarray(y_pred) == pos
        return float(p[t].mean()) if t.any() else float("nan")

    def fpr(y_true: Any, y_pred: Any) -> float:
        t, p = np.asarray(y_true) == pos, np.asarray(y_pred) == pos
        return float(p[~t].mean()) if (~t).any() else float("nan")

    return {"count": count, "accuracy": accuracy, "selection_rate": selection_rate, "tpr": tpr, "fpr": fpr}


def _frame(view: Any, y: np.ndarray, pred: np.ndarray, pos: int) -> Any:
    """The view's fairlearn ``MetricFrame`` by group, indexed by group label."""
    import numpy as np
    from fairlearn.metrics import MetricFrame

    features = np.asarray(view.labels, dtype=object)[view.codes]
    frame = MetricFrame(metrics=_metric_functions(pos), y_true=y, y_pred=pred, sensitive_features=features)
    return _Frame(frame)


class _Frame:
    """A MetricFrame plus its by-group table indexed by plain group label."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        table = frame.by_group
        table.index = [str(i) for i in table.index]
        self.loc = table.loc


def _fairlearn_aggregates(frame: _Frame, rates: dict[str, Any], base_rates: dict[str, Any]) -> dict[str, Any]:
    """Point aggregates of one view from fairlearn's ``difference()`` / ``ratio()`` /
    ``group_min()`` (between groups); the regression comes from the per-group rates."""
    import numpy as np

    from auditft.fairness_stats import aggregates

    difference = frame.frame.difference(method="between_groups")
    ratio = frame.frame.ratio(method="between_groups")
    dp_ratio = float(ratio["selection_rate"])
    if not math.isfinite(dp_ratio) and float(frame.frame.group_max()["selection_rate"]) == 0:
        dp_ratio = 1.0  # every group selects nobody: parity
    tpr, fpr = float(difference["tpr"]), float(difference["fpr"])
    finite = [x for x in (tpr, fpr) if math.isfinite(x)]
    return {
        "demographic_parity_difference": float(difference["selection_rate"]),
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": max(finite) if finite else float("nan"),
        "equal_opportunity_difference": tpr,
        "min_group_accuracy": float(frame.frame.group_min()["accuracy"]),
        "max_group_regression": float(np.asarray(aggregates(rates, base_rates)["max_group_regression"])),
    }


def _fairlearn_cis(view: Any, y: Any, pred: Any, pos: int, n_boot: int, seed: int) -> dict[str, Any]:
    """Per-group 95% CIs from fairlearn's own bootstrap (``MetricFrame(n_boot=...)``)."""
    import numpy as np
    from fairlearn.metrics import MetricFrame

    features = np.asarray(view.labels, dtype=object)[view.codes]
    functions = {k: v for k, v in _metric_functions(pos).items() if k != "count"}
    frame = MetricFrame(metrics=functions, y_true=y, y_pred=pred, sensitive_features=features,
                        n_boot=n_boot, ci_quantiles=[0.025, 0.975], random_state=seed)
    low, high = frame.by_group_ci
    low.index = [str(i) for i in low.index]
    high.index = [str(i) for i in high.index]
    return {name: (low[name].reindex(view.labels).to_numpy(dtype=float),
                   high[name].reindex(view.labels).to_numpy(dtype=float)) for name in functions}


# -- registration and report ------------------------------------------------------------------------

SECTION = """
{% if ev.task == "classification" %}
<p>{{ ev.n }} test examples; overall accuracy {{ fmt(ev.overall.accuracy) }} (base {{ fmt(ev.overall.base_accuracy) }}),
selection rate of <b>{{ ev.positive_label }}</b> {{ fmt(ev.overall.selection_rate) }}.
{% if ev.insufficient_groups %}<b>Insufficient evidence:</b> {{ ev.insufficient_groups|length }} gated group(s) under {{ ev.min_group_size }} examples.{% endif %}
{% if ev.flagged %}<b>Flagged</b> (significantly less accurate than the rest after {{ ev.correction }} correction): {{ ev.flagged|join(", ") }}.{% endif %}</p>
<table class="metrics">
  <tr><th>aggregate (worst gated view)</th><th>adapter</th><th>95% CI</th><th>base</th><th>delta</th><th>n (smallest group)</th></tr>
  {% for name in names if name in metrics %}{% set m = metrics[name] %}
  <tr><td>{{ name }}</td><td>{{ fmt(m.value) }}</td><td>{% if m.ci_low is not none %}{{ fmt(m.ci_low) }} – {{ fmt(m.ci_high) }}{% endif %}</td>
      <td>{{ fmt(m.base_value) }}</td><td>{{ signed(m.delta) }}</td><td>{{ fmt(m.n) }}</td></tr>
  {% endfor %}
</table>
{% for view in ev.views %}
<h4>{{ view.name }} ({{ "gated" if view.gated else "shown, not gated" }})</h4>
<div class="charts"><figure>{{ chart(view) }}<figcaption>Accuracy by group, {{ view.name }}: adapter with 95% CI, base model as the thin grey bar; dashed line: overall accuracy</figcaption></figure></div>
<table>
  <tr><th>group</th><th>n</th><th>accuracy (95% CI)</th><th>selection rate</th><th>TPR</th><th>FPR</th><th>base accuracy</th><th>delta</th><th>p (adjusted)</th><th>flags</th></tr>
  {% for g in view.groups %}
  <tr><td>{{ g.label }}</td><td>{{ g.count }}</td>
      <td>{{ fmt(g.accuracy) }} ({{ fmt(g.accuracy_ci[0]) }} – {{ fmt(g.accuracy_ci[1]) }})</td>
      <td>{{ fmt(g.selection_rate) }}</td><td>{{ fmt(g.tpr) }}</td><td>{{ fmt(g.fpr) }}</td>
      <td>{{ fmt(g.base_accuracy) }}</td><td>{{ signed(g.accuracy_delta) }}</td>
      <td>{% if g.p_value is not none %}{{ fmt(g.p_value) }} ({{ fmt(g.p_adjusted) }}){% endif %}</td>
      <td>{% if g.small %}<b>small (n &lt; {{ ev.min_group_size }})</b> {% endif %}{% if g.flagged %}<b>flagged</b> {% endif %}{% if g.drop is not none and g.drop > 0 %}worse than base{% endif %}</td></tr>
  {% endfor %}
</table>
<table class="metrics">
  <tr><th>{{ view.name }}</th><th>adapter</th><th>95% CI</th><th>base</th></tr>
  {% for name, a in view.aggregates.items() %}
  <tr><td>{{ name }}</td><td>{{ fmt(a.value) }}</td><td>{{ fmt(a.ci[0]) }} – {{ fmt(a.ci[1]) }}</td><td>{{ fmt(a.base_value) }}</td></tr>
  {% endfor %}
</table>
{% endfor %}
{% if ev.regressions %}
<h4>Groups less accurate than with the base model ({{ ev.regressions|length }})</h4>
<table>
  <tr><th>group</th><th>n</th><th>base accuracy</th><th>adapter accuracy</th><th>drop (95% CI)</th></tr>
  {% for r in ev.regressions %}
  <tr><td>{{ r.label }}{% if r.small %} (small){% endif %}</td><td>{{ r.count }}</td><td>{{ fmt(r.base_accuracy) }}</td>
      <td>{{ fmt(r.accuracy) }}</td><td>{{ fmt(r.drop) }} ({{ signed(r.drop_ci[0]) }} – {{ signed(r.drop_ci[1]) }})</td></tr>
  {% endfor %}
</table>
{% endif %}
{% else %}
{% set m = metrics.get("counterfactual_change_rate") %}
<p>{{ ev.n }} counterfactual pairs from {{ ev.n_prompts }} test prompts.
{% if m %}Material change rate: adapter {{ fmt(m.value) }}{% if m.ci_low is not none %} (95% CI {{ fmt(m.ci_low) }} – {{ fmt(m.ci_high) }}){% endif %}, base {{ fmt(m.base_value) }}.{% endif %}</p>
{% if ev.dimensions %}
<table class="metrics">
  <tr><th>dimension</th><th>pairs</th><th>adapter change rate</th><th>base change rate</th></tr>
  {% for dim, d in ev.dimensions.items() %}
  <tr><td>{{ dim }}</td><td>{{ d.n }}</td><td>{{ fmt(d.change_rate) }}</td><td>{{ fmt(d.base_change_rate) }}</td></tr>
  {% endfor %}
</table>
{% endif %}
{% if ev.examples %}
<h4>Pairs, material changes first ({{ ev.examples|length }} of {{ ev.n }})</h4>
<table class="examples">
  <tr><th>row</th><th>prompt</th><th>swapped</th><th>answer</th><th>answer to swapped</th><th>F1</th></tr>
  {% for ex in ev.examples %}
  <tr><td>{{ ex.source }}:{{ ex.row + 1 }}</td><td class="text">{{ ex.prompt }}</td><td class="text">{{ ex.swapped }}</td>
      <td class="text">{{ ex.adapter.answer }}</td><td class="text">{{ ex.adapter.answer_swapped }}</td>
      <td>{{ fmt(ex.adapter.f1) }}{% if ex.adapter.changed %} <b>changed</b>{% endif %}</td></tr>
  {% endfor %}
</table>
{% endif %}
<p class="small">Swap lists: {% for s in ev.swap_lists %}{{ s.name }} ({{ s.dimension }}, {{ s.pairs }} pairs): {{ s.source }} {% endfor %}</p>
{% endif %}
<h4>Method</h4>
<ul class="small">{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
"""


def _group_chart(view: dict[str, Any], overall: float | None) -> Any:
    from auditft.report.charts import bar_chart

    rows = [{"label": g["label"], "value": g["accuracy"], "ci_low": g["accuracy_ci"][0],
             "ci_high": g["accuracy_ci"][1], "base": g["base_accuracy"],
             "note": " ".join(x for x in (f"n={g['count']}", "small" if g["small"] else "",
                                          "flagged" if g["flagged"] else "") if x),
             "color": "#b06a2f" if g["small"] or g["flagged"] else None}
            for g in view["groups"]]
    return bar_chart(rows, f"accuracy by group: {view['name']}", lo=0, hi=1, ref=overall, ref_label="overall")


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "fairness",
        FairnessAudit,
        summary="per-group accuracy / parity / equalized odds with CIs, non-regression vs base, "
                "corrected subgroup flags; counterfactual swaps for generation",
        tasks=("classification", "generation"),
        options=FairnessOptions,
        metrics=GATE_METRICS,
        min_n=MIN_N,
        trivial_metrics=TRIVIAL_METRICS,
        limitations=(
            "needs data.group_columns for classification; groups come from the data, not inferred",
            "selection rate / TPR / FPR are one-vs-rest for one positive label on multi-class tasks",
            "counterfactual swap lists are short, English-only and binary; names are proxies, not identities",
            "the base figure for classification is a linear probe, not a zero-shot classifier",
        ),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import render_fragment

    result = report.get("audits", {}).get("fairness")
    if not result or result.get("error") or not result.get("evidence"):
        return []
    ev = result["evidence"]
    overall = (ev.get("overall") or {}).get("accuracy")
    html = render_fragment(SECTION, notes=result.get("notes", []), metrics=result["metrics"], ev=ev,
                           names=[k for k in GATE_METRICS if k != "counterfactual_change_rate"],
                           chart=lambda view: _group_chart(view, overall))
    return [ReportSection(title="Fairness", html=html, anchor="audit-fairness", order=30)]
