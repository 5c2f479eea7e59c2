"""Audit ``data``: is the training data fit to train on? A data-stage audit: it runs before
tuning, on the suite's data and the base model only (no adapter exists yet), and a failed check
can stop the run before any training time is spent.

Training rows are the rows the tuner learns from or validates on: ``data.train`` plus
``data.validation`` (both from the train file). Every row number this audit reports is the
0-based row of the **train file** (``Example.row``); test rows are named with their source file.

Checks, one module each (``checks`` gathers their pure functions):

* ``labels``, label issues (classification): out-of-fold probabilities of a logistic regression
  on the base model's mean-pooled embeddings (or TF-IDF, option ``features``), then confident
  learning (cleanlab ``find_label_issues``, ranked by self-confidence);
* ``duplicates``, duplicates and train/test leakage: exact (normalised text) and near duplicates
  (MinHash LSH, confirmed by exact Jaccard of word shingles);
* ``groups``, representation: rows per group, per intersection of the group columns, and per label;
* ``personal_data``: personal data in the training text (emails, phones, Luhn-valid cards, US
  SSNs, UK NINOs; detectors from ``auditft.pii``), only ever shown masked;
* ``lengths``: rows the tokenizer would truncate at ``tuner.training.max_length``.

Exports (``exports``; reviewed by people, never applied to the run) go to ``job.extra["export_dir"]``
when core gives one: ``train.cleaned.jsonl`` (train file rows minus label-issue and test-overlap
rows), ``removed_rows.jsonl`` (what was removed, why, and the suggested label) and, with
``export_masked``, ``train.masked.jsonl`` (every string value with personal data masked).
The report section is ``section.j2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft import hookimpl
from auditft.default_plugins.audits.data.audit import DataAudit
from auditft.default_plugins.audits.data.exports import write_exports
from auditft.default_plugins.audits.data.options import GATE_METRICS, KIND, MIN_N, SHOWN_CHARS, DataOptions
from auditft.records import ReportSection

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry

__all__ = ["GATE_METRICS", "KIND", "MIN_N", "SHOWN_CHARS", "DataAudit", "DataOptions", "write_exports"]


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        KIND,
        DataAudit,
        summary="training data before tuning: label issues (confident learning), duplicates and train/test "
                "leakage, group representation, personal data, truncation",
        tasks=("classification", "generation"),
        options=DataOptions,
        metrics=GATE_METRICS,
        min_n=MIN_N,
        stage="data",
        limitations=(
            "label issues need a classification task, and are only as good as the cheap model behind them: "
            "hard but correct rows are flagged too",
            "near duplicates are lexical (word shingles), not paraphrases",
            "personal data detection is pattern-based: names, addresses and free-form identifiers are missed",
            "groups come from data.group_columns; nothing is inferred",
        ),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template

    result = audit_result(report, KIND)
    if result is None:
        return []
    html = render_template(__name__, "section.j2", ev=result["evidence"], metrics=result.get("metrics", {}),
                           notes=result.get("notes", []), names=list(GATE_METRICS))
    return [ReportSection(title="Training data", html=html, anchor="audit-data", order=-10)]
