"""Audit ``retention``: catastrophic forgetting. Does the fine-tune still know what the base
model knew, on held-out general prompts that are not in the fine-tuning data?

Greedy answers of the adapter and of the base model to general probes (bundled: 150
arithmetic, unit-conversion and general-fact questions written by
``suites/data/make_retention_probes.py``; or the suite's own JSONL, option ``probes``), scored
by "answer contained" against the reference or an accepted alternative. Generation only:
retention on a classification suite (a second, related task) is not built yet, so a
classification suite naming this audit fails validation.

Metrics: ``retained_accuracy`` (adapter, base beside it), ``retention_drop`` (base minus
adapter accuracy, paired bootstrap CI and McNemar), ``forgotten_rate`` (share of the probes the
base answers correctly that the adapter gets wrong) and ``retention_drop_max_category``. Probes
whose prompt occurs in the fine-tuning data are excluded and counted: they are not held out.
The drop metrics need ``min_base_correct`` probes the base answers correctly (their ``n``), so
a base that knows nothing, which trivially loses nothing, leaves a retention gate insufficient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditft import hookimpl
from auditft.default_plugins.audits.retention.audit import RetentionAudit
from auditft.default_plugins.audits.retention.metrics import METRIC_DIRECTIONS, PROPORTIONS, TRIVIAL_METRICS
from auditft.default_plugins.audits.retention.options import RetentionOptions
# the report hook lives with its template; re-exported so the plugin module carries both hooks
from auditft.default_plugins.audits.retention.section import auditft_report_sections

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry

__all__ = ["METRIC_DIRECTIONS", "RetentionAudit", "RetentionOptions", "auditft_register_audits",
           "auditft_report_sections"]


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "retention",
        RetentionAudit,
        summary="catastrophic forgetting: adapter vs base on held-out general probes (retained accuracy, paired "
                "drop, forgotten probes), CIs",
        tasks=("generation",),
        options=RetentionOptions,
        metrics=METRIC_DIRECTIONS,
        min_n=20,
        trivial_metrics=TRIVIAL_METRICS,
        proportion_metrics=PROPORTIONS,
        limitations=(
            "the bundled probes are English arithmetic, unit conversions and textbook facts: they measure general "
            "knowledge a small chat model has, not the knowledge your domain needs; use option 'probes' for that",
            "string matching, no judge model: an answer counts when it contains the reference or an accepted "
            "alternative as whole words (a wrong answer that also names the right one counts as correct)",
            "generation only: retention on a classification suite (a second, related task in the same label "
            "space) is not built yet; a classification suite naming this audit fails validation",
            "held out means 'not in the train or validation split after normalisation'; a paraphrase in the "
            "fine-tuning data is not detected",
        ),
    )
