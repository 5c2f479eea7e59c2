"""The ``data`` audit's run: every check over the training rows in train-file order, then the
exports."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from auditft.default_plugins.audits.data.duplicates import check_duplicates
from auditft.default_plugins.audits.data.exports import export_for_review
from auditft.default_plugins.audits.data.findings import Findings
from auditft.default_plugins.audits.data.groups import check_groups
from auditft.default_plugins.audits.data.labels import check_label_issues
from auditft.default_plugins.audits.data.lengths import check_lengths
from auditft.default_plugins.audits.data.options import KIND, DataOptions
from auditft.default_plugins.audits.data.personal_data import check_pii
from auditft.records import AuditResult

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.jobs import AuditJob

Check = Callable[["AuditJob", "list[Example]", Findings, DataOptions], None]

#: (evidence name of its timing, check), in the order they run
CHECKS: tuple[tuple[str, Check], ...] = (
    ("label_issues", check_label_issues), ("duplicates", check_duplicates), ("groups", check_groups),
    ("pii", check_pii), ("lengths", check_lengths),
)


class DataAudit:
    def __init__(self, options: DataOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        started = time.perf_counter()
        # in train-file order, so "the first copy" of a duplicate is the earliest row of the file
        rows = sorted(list(job.data.train) + list(job.data.validation), key=lambda ex: ex.row)
        if not rows:
            raise ValueError("the data audit needs training rows; data.train is empty")
        out = Findings()
        out.evidence.update(task=job.task, n_train=len(rows), n_test=len(job.data.test),
                            labels=list(job.data.labels), group_columns=list(job.data.group_columns))
        for name, check in CHECKS:
            t = time.perf_counter()
            check(job, rows, out, self.options)
            out.evidence["seconds"][name] = round(time.perf_counter() - t, 3)
        export_for_review(job, out, self.options)
        out.notes.append("Row numbers are 0-based rows of the train file (its first data row is 0); training "
                         "rows are data.train plus data.validation. Rates are counts over the whole data, "
                         "not estimates from a sample, so they carry no confidence interval.")
        return AuditResult(kind=KIND, metrics=out.metrics, evidence=out.evidence, notes=out.notes,
                           seconds=round(time.perf_counter() - started, 3), rows=out.rows)
