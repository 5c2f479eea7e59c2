"""auditft audit plugin ``myrecall``: does the fine-tune serve every class, or only the big ones?

A classification audit in one module: an options model, an audit class with ``run(job)``, and
two hook implementations (registration, report section). See auditft's docs/plugins.md, "The
model session" for what ``job.models`` and ``job.data`` hold.

* ``job.models.adapter_proba("test")`` is an ``n x len(job.data.labels)`` array of class
  probabilities, one row per ``job.data.test`` example, columns in ``job.data.labels`` order;
* ``job.models.base_probe_proba("test")`` is the same for the base model (a linear probe on its
  frozen embeddings, fitted on the train split): the base figure every metric carries;
* ``Example.label`` is an integer index into ``job.data.labels`` (the names are for display).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection

if TYPE_CHECKING:  # types only: importing auditft's internals at run time is not needed
    import numpy as np

    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry, Direction

KIND = "myrecall"
#: gate metrics this audit can produce and which direction is better
METRICS: dict[str, Direction] = {"macro_recall": "higher", "macro_recall_delta": "higher",
                                 "min_class_recall": "higher"}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown keys in the suite are errors

    n_boot: int = Field(default=1000, ge=100, le=100_000)
    #: misclassified test rows shown in the report
    max_examples: int = Field(default=5, ge=0, le=100)


def per_class_recall(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Recall of each of ``k`` classes (NaN for a class with no rows): ``y`` and ``pred`` are
    integer label indexes, as ``Example.label`` and ``proba.argmax(axis=1)`` give them."""
    import numpy as np

    hits = np.bincount(y[pred == y], minlength=k).astype(float)
    rows = np.bincount(y, minlength=k).astype(float)
    return np.divide(hits, rows, out=np.full(k, np.nan), where=rows > 0)


def macro_recall_figures(y: np.ndarray, pred: np.ndarray, base_pred: np.ndarray, k: int, *, seed: int,
                         n_boot: int) -> dict[str, Metric]:
    """``macro_recall`` (mean recall over the classes present) and its paired delta against the
    base model, with seeded percentile-bootstrap 95% CIs over the test rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    macro = lambda p: float(np.nanmean(per_class_recall(y, p, k)))  # noqa: E731
    boot = np.array([np.nanmean(per_class_recall(y[i], pred[i], k)) for i in idx])
    base_boot = np.array([np.nanmean(per_class_recall(y[i], base_pred[i], k)) for i in idx])
    value, base = macro(pred), macro(base_pred)
    diff = boot - base_boot
    details = {"interval": "percentile bootstrap", "n_boot": n_boot}
    return {
        "macro_recall": Metric(value=value, ci_low=float(np.percentile(boot, 2.5)),
                               ci_high=float(np.percentile(boot, 97.5)), n=len(y), base_value=base, details=details),
        "macro_recall_delta": Metric(value=value - base, ci_low=float(np.percentile(diff, 2.5)),
                                     ci_high=float(np.percentile(diff, 97.5)), n=len(y),
                                     details={**details, "interval": "paired percentile bootstrap"}),
    }


class Audit:
    def __init__(self, options: Options) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        """Per-class recall of the adapter and of the base model on the test split -> metrics
        with CIs. Raise on failure: core turns the exception into an ``error`` result naming
        this plugin."""
        import numpy as np

        from auditft.stats import proportion_ci

        started = time.perf_counter()
        test, labels = job.data.test, job.data.labels
        k = len(labels)
        y = np.array([ex.label for ex in test], dtype=np.int64)
        pred = np.asarray(job.models.adapter_proba("test")).argmax(axis=1)
        base_pred = np.asarray(job.models.base_probe_proba("test")).argmax(axis=1)
        if len(pred) != len(y) or len(base_pred) != len(y):
            raise ValueError(f"the model session scored {len(pred)} / {len(base_pred)} rows for {len(y)} test rows")
        recall, base_recall = per_class_recall(y, pred, k), per_class_recall(y, base_pred, k)
        rows = np.bincount(y, minlength=k)
        metrics = macro_recall_figures(y, pred, base_pred, k, seed=job.seed, n_boot=self.options.n_boot)
        worst = int(np.nanargmin(recall))  # the class the adapter serves worst
        low, high = proportion_ci(int(np.sum((y == worst) & (pred == worst))), int(rows[worst]))
        metrics["min_class_recall"] = Metric(value=float(recall[worst]), ci_low=low, ci_high=high, n=int(rows[worst]),
                                             base_value=float(base_recall[worst]),
                                             details={"interval": "clopper-pearson", "class": labels[worst]})
        misses = [i for i in range(len(y)) if pred[i] != y[i]][:self.options.max_examples]
        evidence = {
            "n": len(y),
            "classes": [{"label": labels[c], "n": int(rows[c]), "recall": _num(recall[c]),
                         "base_recall": _num(base_recall[c])} for c in range(k)],
            "worst": labels[worst],
            "misses": [{"text": test[i].text, "label": labels[y[i]], "predicted": labels[pred[i]]} for i in misses],
        }
        notes = [f"Recall of a class: the share of its test rows the model predicts as that class. macro_recall is "
                 f"their mean (95% CI: percentile bootstrap over test rows, {self.options.n_boot} resamples, "
                 "seeded; the delta is paired); min_class_recall is the worst class's recall with its exact "
                 "interval. The base model is a linear probe on its frozen embeddings."]
        return AuditResult(kind=KIND, metrics=metrics, evidence=evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))


def _num(value: float) -> float | None:
    """A finite float, or None (JSON has no NaN): evidence must survive ``json.dumps``."""
    import math

    return None if math.isnan(value) else float(value)


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(KIND, Audit, summary="per-class recall, adapter vs base probe, with CIs", tasks=("classification",),
                 options=Options, metrics=METRICS, min_n=20)


SECTION = """
<p>{{ ev.n }} test rows; the class served worst: <strong>{{ ev.worst }}</strong>.</p>
<table>
<tr><th>class</th><th>rows</th><th>recall (adapter)</th><th>recall (base)</th></tr>
{% for c in ev.classes %}<tr><td>{{ c.label }}</td><td>{{ fmt(c.n) }}</td><td>{{ fmt(c.recall) }}</td>
<td>{{ fmt(c.base_recall) }}</td></tr>
{% endfor %}</table>
{% if ev.misses %}<p>Misclassified test rows:</p><ul>
{% for m in ev.misses %}<li>{{ m.text }} ({{ m.label }}, predicted {{ m.predicted }})</li>{% endfor %}
</ul>{% endif %}
{% for note in notes %}<p class="small">{{ note }}</p>{% endfor %}
"""


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_fragment  # autoescaped: data and label text stays inert

    result = audit_result(report, KIND)  # None when the audit did not run, failed or left no evidence
    if result is None:
        return []
    html = render_fragment(SECTION, ev=result["evidence"], notes=result.get("notes", []))
    return [ReportSection(title="Per-class recall (myrecall)", html=html, anchor="audit-myrecall", order=60)]
