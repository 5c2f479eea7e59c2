"""Audit ``kfold``: does the fine-tune generalise, or did it get lucky with one split?

The rows the adapter may learn from (train + validation; the test split is never touched) are
cut into ``k`` folds: stratified by label for classification (``StratifiedKFold``), plain
``KFold`` for generation, both shuffled with the suite's seed. For each fold a FRESH adapter is
trained with the suite's own tuner, tuner options and training settings on the other ``k - 1``
folds and scored on the held-out fold (and on its own training rows, for the generalisation
gap). The spread of the held-out scores says how much the run's single figure could move by
luck of the split; a large train-minus-held-out gap says the tuner memorises.

Cost: ``k`` extra trainings. ``max_rows`` bounds it with a seeded stratified subsample of
train + validation before folding; that trades precision (fewer held-out rows, wider
intervals) for time.

The base model's figure, so every aggregate has a delta: for classification a linear probe
(logistic regression) on the frozen base model's mean-pooled embeddings, fitted per fold on
the same training rows and scored on the same held-out rows as the adapter (embeddings are
computed once for all rows, and rows the run has embedded already, e.g. for the accuracy
probe, are not embedded again). For generation, the base model's own answers (no training), cut
along the same folds.

The package: ``options`` (options and the metric table), ``folds`` (which rows each fold
trains and is scored on), ``audit`` (the folds, trained by core's retraining service
``job.retrain``), ``scoring`` (a fold's figures, the base model's), ``statistics`` and
``result`` (aggregates, evidence, notes), ``seeds`` (seed stability), and ``section.j2`` (the
report section). sklearn, scipy and the model libraries load only when the audit runs.

Seed stability (``seeds: N``, N >= 2): fold 1's split is trained again with N - 1 further seeds
(fold 1's own adapter is the first), all on the same training rows and scored on the same
held-out rows; ``seed_std_*`` and ``seed_range_*`` report the spread across seeds beside the
spread across folds. Cost: N - 1 extra trainings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft import hookimpl
from auditft.default_plugins.audits.kfold.audit import KFoldAudit
from auditft.default_plugins.audits.kfold.folds import EARLY_STOPPING_FRACTION, fold_indices, subsample
from auditft.default_plugins.audits.kfold.options import (
    CLASSIFICATION_METRICS,
    GENERATION_METRICS,
    SEED_CLASSIFICATION_METRICS,
    SEED_GENERATION_METRICS,
    KFoldOptions,
)
from auditft.default_plugins.audits.kfold.result import GENERATION_BASE_NOTE, INTERVAL_NOTE, PROBE_NOTE
from auditft.default_plugins.audits.kfold.scoring import MIN_GROUP, evaluate_generation, score_generation, subgroup_gap
from auditft.default_plugins.audits.kfold.seeds import SEED_NOTE, seed_values
from auditft.default_plugins.audits.kfold.statistics import (
    corrected_interval,
    expected_range_factor,
    seed_spread,
    std_interval,
    summarise,
    t_interval,
)
from auditft.records import ReportSection, is_finite

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry

# the names the single-module plugin offered, still importable from here
__all__ = ["CLASSIFICATION_METRICS", "EARLY_STOPPING_FRACTION", "GENERATION_BASE_NOTE", "GENERATION_METRICS",
           "INTERVAL_NOTE", "MIN_GROUP", "PROBE_NOTE", "SEED_CLASSIFICATION_METRICS", "SEED_GENERATION_METRICS",
           "SEED_NOTE", "KFoldAudit", "KFoldOptions", "auditft_register_audits", "auditft_report_sections",
           "corrected_interval", "evaluate_generation", "expected_range_factor", "fold_indices", "score_generation",
           "seed_spread", "seed_values", "std_interval", "subgroup_gap", "subsample", "summarise", "t_interval"]


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "kfold",
        KFoldAudit,
        summary="k-fold cross-validation with fresh adapters: mean, spread and train-vs-held-out gap",
        tasks=("classification", "generation"),
        options=KFoldOptions,
        metrics={**CLASSIFICATION_METRICS, **GENERATION_METRICS, **SEED_CLASSIFICATION_METRICS,
                 **SEED_GENERATION_METRICS},
        min_n=30,
        # fold models that all predict the majority class agree perfectly and score the same on
        # their training rows as on held-out ones: zero spread, zero gap; seed models that all
        # collapse to it likewise have zero spread across seeds
        trivial_metrics=("kfold_std_accuracy", "kfold_std_token_f1", "generalization_gap", *SEED_CLASSIFICATION_METRICS,
                         *SEED_GENERATION_METRICS),
        limitations=("trains k extra adapters (k times the tuning cost; max_rows bounds it)",
                     "fold figures share training rows, so the t-intervals are somewhat optimistic",
                     "the classification base figure is a linear probe, not a zero-shot classifier",
                     "seeds: N - 1 more trainings on fold 1's split; the seed moves the initial weights (head, "
                     "adapter), not batch order or dropout, and 3 seeds give a wide interval on the spread"),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template
    from auditft.report.charts import bar_chart

    result = audit_result(report, "kfold")
    if result is None:
        return []
    ev = result["evidence"]
    figure = ev.get("figure", "accuracy")
    label = "accuracy" if figure == "accuracy" else "token F1"
    metrics = result.get("metrics", {})
    mean = (metrics.get(f"kfold_mean_{figure}") or {}).get("value")
    rows = [{"label": f"fold {f['fold']}", "value": f.get(f"heldout_{figure}"),
             "base": f.get(f"base_heldout_{figure}"),
             "note": f"(train {f[f'train_{figure}']:.3f})" if is_finite(f.get(f"train_{figure}")) else ""}
            for f in ev.get("folds", [])]
    chart = bar_chart(rows, f"held-out {label} per fold", lo=0, hi=1,
                      ref=mean if is_finite(mean) else None, ref_label="mean")
    seeds = ev.get("seeds")
    seed_chart = bar_chart([{"label": f"seed {r['seed_index']} ({r['seed']})", "value": r.get(f"heldout_{figure}")}
                            for r in seeds.get("runs", [])], f"held-out {label} per seed (fold 1's split)", lo=0, hi=1,
                           ref=seeds.get("mean") if is_finite(seeds.get("mean")) else None,
                           ref_label="mean") if seeds else None
    html = render_template(__name__, "section.j2", ev=ev, metrics=metrics, notes=result.get("notes", []),
                           chart=chart, seed_chart=seed_chart, seeds=seeds, figure=figure, label=label,
                           classification=figure == "accuracy")
    return [ReportSection(title="K-fold generalisation", html=html, anchor="audit-kfold", order=25)]
