"""Audit ``accuracy``, on the adapter AND on the base model, with bootstrap 95% CIs.

Classification: accuracy, macro-F1, per-class precision/recall, confusion matrix. The base
model has no classifier head of its own, so its figure is a linear probe: logistic regression
on the frozen base model's mean-pooled embeddings, fitted on the same train split the adapter
saw.

Generation: normalised exact match, token F1 and "answer contained" against the reference
responses, greedy answers of the adapter and of the base model to the same test prompts.

Deltas are adapter minus base, with paired-bootstrap CIs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection

if TYPE_CHECKING:
    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry

BASELINE_NOTE = (
    "Base model figures come from a linear probe: logistic regression on the frozen base "
    "model's mean-pooled embeddings, fitted on the same train split as the adapter."
)


class AccuracyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_boot: int = Field(default=1000, ge=100, le=100_000)
    max_examples: int = Field(default=12, ge=0, le=500)
    #: generation: Hugging Face ``evaluate`` metrics, by hub name (needs the hub) or by the
    #: path of a local metric folder / ``.py`` file (relative to the suite)
    evaluate: list[str] = Field(default_factory=list)
    #: resamples for the CIs of ``evaluate`` metrics (each resample recomputes the metric)
    evaluate_n_boot: int = Field(default=200, ge=0, le=10_000)

    @field_validator("evaluate")
    @classmethod
    def _local_metrics_exist(cls, specs: list[str], info: ValidationInfo) -> list[str]:
        from pathlib import Path

        from auditft.hfmetrics import is_path, local_path

        suite_dir = Path((info.context or {}).get("suite_dir", "."))
        for spec in specs:
            if is_path(spec) and not local_path(spec, suite_dir).exists():
                raise ValueError(f"metric path {spec!r} does not exist")
        return specs


class AccuracyAudit:
    def __init__(self, options: AccuracyOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        if job.task == "generation":
            return self.run_generation(job)
        return self.run_classification(job)

    def run_generation(self, job: AuditJob) -> AuditResult:
        from auditft.stats import bootstrap_means
        from auditft.textmetrics import contains_answer, exact_match, token_f1

        started = time.perf_counter()
        test = job.data.test
        prompts = [ex.text for ex in test]
        references = [ex.response or "" for ex in test]
        answers = {which: job.models.generate(prompts, which=which) for which in ("adapter", "base")}
        scores = {which: {"exact_match": [exact_match(a, r) for a, r in zip(answers[which], references)],
                          "token_f1": [token_f1(a, r) for a, r in zip(answers[which], references)],
                          "answer_contained": [contains_answer(a, r) for a, r in zip(answers[which], references)]}
                  for which in answers}
        figures = bootstrap_means(scores["adapter"], scores["base"], seed=job.seed, n_boot=self.options.n_boot)
        metrics = {name: Metric(**{key: fig[key] for key in ("value", "ci_low", "ci_high", "n", "base_value")})
                   for name, fig in figures.items()}
        extra, extra_notes = self._evaluate_metrics(job, answers, references)
        metrics.update(extra)
        f1 = scores["adapter"]["token_f1"]
        worst = sorted(range(len(test)), key=lambda i: (f1[i], i))[: self.options.max_examples]
        examples = [{"row": test[i].row, "source": test[i].source, "prompt": test[i].text,
                     "reference": references[i], "answer": answers["adapter"][i],
                     "base_answer": answers["base"][i], "token_f1": f1[i]} for i in worst if f1[i] < 1.0]
        evidence = {"n": len(test), "n_boot": self.options.n_boot, "examples": examples,
                    "method": "greedy decoding; SQuAD normalisation (lower case, no punctuation or articles)"}
        return AuditResult(kind="accuracy", metrics=metrics, evidence=evidence,
                           notes=["Answers are greedy generations with the model's chat template; exact match "
                                  "and token F1 use SQuAD normalisation; 'answer contained' counts an answer "
                                  "that includes the whole reference.",
                                  f"95% CIs: percentile bootstrap, {self.options.n_boot} resamples.", *extra_notes],
                           seconds=round(time.perf_counter() - started, 3))

    def _evaluate_metrics(self, job: AuditJob, answers: dict[str, list[str]],
                          references: list[str]) -> tuple[dict[str, Metric], list[str]]:
        """``evaluate`` metrics on adapter and base answers; CIs by recomputing the metric on
        paired resamples of the test rows."""
        import numpy as np

        from auditft.hfmetrics import compute, load_metric

        metrics: dict[str, Metric] = {}
        notes: list[str] = []
        n = len(references)
        rng = np.random.default_rng(job.seed)
        draws = [rng.integers(0, n, size=n) for _ in range(self.options.evaluate_n_boot)] if n else []
        for spec in self.options.evaluate:
            metric = load_metric(spec, job.suite.source.parent)
            point = {w: compute(metric, answers[w], references) for w in ("adapter", "base")}
            samples: dict[str, list[float]] = {key: [] for key in point["adapter"]}
            deltas: dict[str, list[float]] = {key: [] for key in point["adapter"]}
            for idx in draws:
                refs = [references[i] for i in idx]
                a = compute(metric, [answers["adapter"][i] for i in idx], refs)
                b = compute(metric, [answers["base"][i] for i in idx], refs)
                for key in samples:
                    samples[key].append(a.get(key, float("nan")))
                    deltas[key].append(a.get(key, float("nan")) - b.get(key, float("nan")))
            for key, value in point["adapter"].items():
                base = point["base"].get(key)
                ci = (float(np.nanpercentile(samples[key], 2.5)), float(np.nanpercentile(samples[key], 97.5))) \
                    if draws else (None, None)
                metrics[key] = Metric(value=value, ci_low=ci[0], ci_high=ci[1], n=n, base_value=base)
                if base is not None:
                    dci = (float(np.nanpercentile(deltas[key], 2.5)), float(np.nanpercentile(deltas[key], 97.5))) \
                        if draws else (None, None)
                    metrics[f"{key}_delta"] = Metric(value=value - base, ci_low=dci[0], ci_high=dci[1], n=n)
            notes.append(f"evaluate metric {spec!r}: {', '.join(point['adapter'])} "
                         f"({self.options.evaluate_n_boot} bootstrap resamples).")
        return metrics, notes

    def run_classification(self, job: AuditJob) -> AuditResult:
        import numpy as np
        from sklearn.metrics import precision_recall_fscore_support

        from auditft.inference import labels_of
        from auditft.stats import bootstrap_metrics, confusion

        started = time.perf_counter()
        test = job.data.test
        labels = job.data.labels
        k = len(labels)
        y = labels_of(test)
        proba = job.models.adapter_proba("test")
        pred = proba.argmax(axis=1)
        base_pred = job.models.base_probe_proba("test").argmax(axis=1)
        figures = bootstrap_metrics(y, pred, k, base_pred=base_pred, seed=job.seed,
                                    n_boot=self.options.n_boot)
        metrics = {name: Metric(**{key: fig[key] for key in ("value", "ci_low", "ci_high", "n", "base_value")})
                   for name, fig in figures.items()}

        def per_class(predicted: Any) -> list[dict[str, Any]]:
            p, r, f, s = precision_recall_fscore_support(y, predicted, labels=list(range(k)), zero_division=0)
            return [{"label": labels[i], "precision": float(p[i]), "recall": float(r[i]),
                     "f1": float(f[i]), "support": int(s[i])} for i in range(k)]

        wrong = np.flatnonzero(pred != y)
        confidence = proba[np.arange(len(pred)), pred]
        worst = wrong[np.argsort(-confidence[wrong], kind="stable")][: self.options.max_examples]
        examples = [{"row": test[i].row, "source": test[i].source, "text": test[i].text,
                     "label": labels[y[i]], "predicted": labels[pred[i]],
                     "confidence": float(confidence[i]), "groups": test[i].groups} for i in worst]
        evidence = {
            "labels": labels,
            "n": int(len(y)),
            "adapter": {"confusion": confusion(y, pred, k).tolist(), "per_class": per_class(pred)},
            "base": {"confusion": confusion(y, base_pred, k).tolist(), "per_class": per_class(base_pred),
                     "method": "linear probe (logistic regression on frozen mean-pooled embeddings)"},
            "n_boot": self.options.n_boot,
            "errors": int(len(wrong)),
            "examples": examples,
        }
        return AuditResult(kind="accuracy", metrics=metrics, evidence=evidence,
                           notes=[BASELINE_NOTE, f"95% CIs: percentile bootstrap, {self.options.n_boot} resamples."],
                           seconds=round(time.perf_counter() - started, 3))


SECTION = """
<p>{{ n }} test examples. {% for note in notes %}{{ note }} {% endfor %}</p>
<table class="metrics">
  <tr><th>metric</th><th>adapter</th><th>95% CI</th><th>base</th><th>delta (95% CI)</th></tr>
  {% for name in ["accuracy", "macro_f1"] if name in metrics %}{% set m = metrics[name] %}{% set d = metrics.get(name ~ "_delta") %}
  <tr><td>{{ name }}</td><td>{{ fmt(m.value) }}</td><td>{{ fmt(m.ci_low) }} – {{ fmt(m.ci_high) }}</td>
      <td>{{ fmt(m.base_value) }}</td>
      <td>{% if d %}{{ signed(d.value) }} ({{ signed(d.ci_low) }} – {{ signed(d.ci_high) }}){% endif %}</td></tr>
  {% endfor %}
</table>
<div class="charts">
  <figure>{{ confusion_chart(ev.adapter.confusion, ev.labels, "adapter") }}<figcaption>Confusion matrix, adapter (rows: true, columns: predicted)</figcaption></figure>
  <figure>{{ confusion_chart(ev.base.confusion, ev.labels, "base") }}<figcaption>Confusion matrix, base model (linear probe)</figcaption></figure>
</div>
<table>
  <tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>base recall</th></tr>
  {% for row in ev.adapter.per_class %}
  <tr><td>{{ row.label }}</td><td>{{ fmt(row.precision) }}</td><td>{{ fmt(row.recall) }}</td><td>{{ fmt(row.f1) }}</td>
      <td>{{ row.support }}</td><td>{{ fmt(ev.base.per_class[loop.index0].recall) }}</td></tr>
  {% endfor %}
</table>
{% if ev.examples %}
<h4>Most confident errors of the adapter ({{ ev.examples|length }} of {{ ev.errors }})</h4>
<table class="examples">
  <tr><th>row</th><th>text</th><th>true</th><th>predicted</th><th>confidence</th><th>groups</th></tr>
  {% for ex in ev.examples %}
  <tr><td>{{ ex.source }}:{{ ex.row + 1 }}</td><td class="text">{{ ex.text }}</td><td>{{ ex.label }}</td>
      <td>{{ ex.predicted }}</td><td>{{ fmt(ex.confidence) }}</td>
      <td class="small">{% for k, v in ex.groups.items() %}{{ k }}={{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
  {% endfor %}
</table>
{% endif %}
"""


GENERATION_SECTION = """
<p>{{ n }} test prompts. {% for note in notes %}{{ note }} {% endfor %}</p>
<table class="metrics">
  <tr><th>metric</th><th>adapter</th><th>95% CI</th><th>base</th><th>delta (95% CI)</th></tr>
  {% for name in metrics if not name.endswith("_delta") %}{% set m = metrics[name] %}{% set d = metrics.get(name ~ "_delta") %}
  <tr><td>{{ name }}</td><td>{{ fmt(m.value) }}</td><td>{{ fmt(m.ci_low) }} – {{ fmt(m.ci_high) }}</td>
      <td>{{ fmt(m.base_value) }}</td>
      <td>{% if d %}{{ signed(d.value) }} ({{ signed(d.ci_low) }} – {{ signed(d.ci_high) }}){% endif %}</td></tr>
  {% endfor %}
</table>
{% if ev.examples %}
<h4>Lowest-scoring answers of the adapter</h4>
<table class="examples">
  <tr><th>row</th><th>prompt</th><th>reference</th><th>adapter</th><th>base</th><th>token F1</th></tr>
  {% for ex in ev.examples %}
  <tr><td>{{ ex.source }}:{{ ex.row + 1 }}</td><td class="text">{{ ex.prompt }}</td><td class="text">{{ ex.reference }}</td>
      <td class="text">{{ ex.answer }}</td><td class="text">{{ ex.base_answer }}</td><td>{{ fmt(ex.token_f1) }}</td></tr>
  {% endfor %}
</table>
{% endif %}
"""


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    from auditft.hfmetrics import KNOWN_KEYS

    register.add(
        "accuracy",
        AccuracyAudit,
        summary="accuracy / macro-F1 (classification) or exact match / token F1 (generation), "
                "bootstrap CIs, adapter vs base",
        tasks=("classification", "generation"),
        options=AccuracyOptions,
        metrics={"accuracy": "higher", "macro_f1": "higher",
                 "accuracy_delta": "higher", "macro_f1_delta": "higher",
                 "exact_match": "higher", "token_f1": "higher", "answer_contained": "higher",
                 "exact_match_delta": "higher", "token_f1_delta": "higher", "answer_contained_delta": "higher",
                 **KNOWN_KEYS, **{f"{k}_delta": d for k, d in KNOWN_KEYS.items()}},
        min_n=30,
        limitations=("classification: the base figure is a linear probe, not a zero-shot classifier",
                     "evaluate metrics can be gated only under their common keys (rouge1/2/L/Lsum, bleu, "
                     "sacrebleu, chrf, meteor, bertscore_f1, ter); other keys are reported, not gated"),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import render_fragment
    from auditft.report.charts import confusion_chart

    result = report.get("audits", {}).get("accuracy")
    if not result or result.get("error") or not result.get("evidence"):
        return []
    source = GENERATION_SECTION if report.get("task") == "generation" else SECTION
    html = render_fragment(source, n=result["evidence"]["n"], notes=result.get("notes", []),
                           metrics=result["metrics"], ev=result["evidence"], confusion_chart=confusion_chart)
    return [ReportSection(title="Accuracy", html=html, anchor="audit-accuracy", order=20)]
