"""Audit ``accuracy``, on the adapter AND on the base model, with bootstrap 95% CIs.

Classification: accuracy, macro-F1, per-class precision/recall, confusion matrix. The base
model has no classifier head of its own, so its figure is a linear probe: logistic regression
on the frozen base model's mean-pooled embeddings, fitted on the same train split the adapter
saw.

Generation: normalised exact match, token F1 and "answer contained" against the reference
responses, greedy answers of the adapter and of the base model to the same test prompts.

Deltas are adapter minus base, with paired-bootstrap CIs. The report section's HTML is
``section.j2`` (classification) and ``generation_section.j2`` beside this file.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection

if TYPE_CHECKING:
    import numpy as np

    from auditft.data import Example
    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry

BASELINE_NOTE = (
    "Base model figures come from a linear probe: logistic regression on the frozen base "
    "model's mean-pooled embeddings, fitted on the same train split as the adapter."
)
TRIVIAL_BASELINES_NOTE = (
    "Trivial baselines, fitted on the same train split: the majority class of the training rows, and a "
    "bag-of-words model (scikit-learn TF-IDF of word unigrams and bigrams, sublinear tf, + logistic "
    "regression). accuracy_vs_best_baseline / macro_f1_vs_best_baseline are the adapter minus the strongest "
    "of majority class, bag of words and base-model probe on that figure (chosen on the test rows, which "
    "favours the baseline), with a paired percentile-bootstrap CI over the same test rows."
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
        clusters = cluster_labels(job, test)
        figures = bootstrap_means(scores["adapter"], scores["base"], seed=job.seed, n_boot=self.options.n_boot,
                                  proportions=("exact_match", "answer_contained"), clusters=clusters)
        metrics = {name: Metric.from_figure(fig) for name, fig in figures.items()}
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
                                  interval_note(self.options.n_boot, len(test), clusters), *extra_notes],
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
        clusters = cluster_labels(job, test)
        figures = bootstrap_metrics(y, pred, k, base_pred=base_pred, seed=job.seed,
                                    n_boot=self.options.n_boot, clusters=clusters)
        metrics = {name: Metric.from_figure(fig) for name, fig in figures.items()}
        baselines, versus = self._baselines(job, y, pred, base_pred, k, clusters)
        metrics.update(versus)

        def per_class(predicted: np.ndarray) -> list[dict[str, Any]]:
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
            "clusters": None if clusters is None else len(set(clusters)),
            "baselines": baselines,
            "errors": int(len(wrong)),
            "examples": examples,
        }
        return AuditResult(kind="accuracy", metrics=metrics, evidence=evidence,
                           notes=[BASELINE_NOTE, TRIVIAL_BASELINES_NOTE,
                                  interval_note(self.options.n_boot, len(y), clusters)],
                           seconds=round(time.perf_counter() - started, 3))

    def _baselines(self, job: AuditJob, y: np.ndarray, pred: np.ndarray, base_pred: np.ndarray,
                   k: int, clusters: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Metric]]:
        """Majority class and bag of words beside the base probe; the adapter against the
        strongest of the three on accuracy and on macro-F1 (paired bootstrap)."""
        import numpy as np

        from auditft.inference import labels_of
        from auditft.stats import accuracy_from, bootstrap_metrics, confusion, macro_f1_from

        y_train = labels_of(job.data.train)
        majority = int(np.bincount(y_train, minlength=k).argmax())
        predictions = {"majority class": np.full(len(y), majority), "bag of words": bag_of_words(job, job.seed),
                       "base model probe": np.asarray(base_pred)}
        table: dict[str, dict[str, Any]] = {}
        for name, p in predictions.items():
            cm = confusion(y, p, k)
            table[name] = {"accuracy": float(accuracy_from(cm)), "macro_f1": float(macro_f1_from(cm))}
        table["majority class"]["label"] = job.data.labels[majority]
        metrics: dict[str, Metric] = {}
        strongest: dict[str, str] = {}
        for figure in ("accuracy", "macro_f1"):
            best = max(table, key=lambda name: (table[name][figure], name))
            strongest[figure] = best
            paired = bootstrap_metrics(y, pred, k, base_pred=predictions[best], seed=job.seed,
                                       n_boot=self.options.n_boot, clusters=clusters)[f"{figure}_delta"]
            metrics[f"{figure}_vs_best_baseline"] = Metric.from_figure({**paired, "n": int(len(y))})
        return {"figures": table, "strongest": strongest}, metrics


def cluster_labels(job: AuditJob, examples: list[Example]) -> list[str] | None:
    """Each test row's ``data.cluster_column`` value, or None when the suite names no clusters."""
    if not getattr(job.suite.data, "cluster_column", None):
        return None
    return [str(ex.cluster) for ex in examples]


def interval_note(n_boot: int, n: int, clusters: list[str] | None) -> str:
    """The method note for this audit's intervals (``auditft.stats``)."""
    from auditft.stats import EXACT_BELOW

    if clusters is not None:
        return (f"95% CIs: cluster bootstrap over {len(set(clusters))} clusters of data.cluster_column ({n_boot} "
                "resamples of whole clusters; rows in one cluster are not independent), deltas paired on the same "
                "resampled clusters; no exact interval or McNemar test (both assume independent rows).")
    share = ("exact Clopper-Pearson for accuracy / exact match / answer contained (a share of fewer than "
             f"{EXACT_BELOW} rows), " if n < EXACT_BELOW else "")
    return (f"95% CIs: {share}percentile bootstrap ({n_boot} resamples) otherwise; deltas: paired percentile "
            "bootstrap over the same resampled rows, and for shares the two-sided exact McNemar test on the rows "
            "where exactly one of the two models is right (p-value beside the delta).")


def bag_of_words(job: AuditJob, seed: int) -> np.ndarray:
    """Test-split predictions of TF-IDF (word 1-2 grams) + logistic regression fitted on the train split."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from auditft.inference import labels_of

    y_train = labels_of(job.data.train)
    if len(set(y_train.tolist())) < 2:  # one class in training: the model can only say that class
        return np.full(len(job.data.test), int(y_train[0]) if len(y_train) else 0)
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    model.fit([ex.text for ex in job.data.train], y_train)
    return np.asarray(model.predict([ex.text for ex in job.data.test]), dtype=np.int64)


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
                 "accuracy_vs_best_baseline": "higher", "macro_f1_vs_best_baseline": "higher",
                 "exact_match": "higher", "token_f1": "higher", "answer_contained": "higher",
                 "exact_match_delta": "higher", "token_f1_delta": "higher", "answer_contained_delta": "higher",
                 **KNOWN_KEYS, **{f"{k}_delta": d for k, d in KNOWN_KEYS.items()}},
        min_n=30,
        # always predicting the majority class reaches the majority share: on imbalanced data
        # that clears many accuracy thresholds
        trivial_metrics=("accuracy",),
        # shares of test rows: exact intervals below 300 rows, and the power check before training
        proportion_metrics=("accuracy", "exact_match", "answer_contained"),
        limitations=("classification: the base figure is a linear probe, not a zero-shot classifier",
                     "evaluate metrics can be gated only under their common keys (rouge1/2/L/Lsum, bleu, "
                     "sacrebleu, chrf, meteor, bertscore_f1, ter); other keys are reported, not gated"),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_template
    from auditft.report.charts import confusion_chart

    result = audit_result(report, "accuracy")
    if result is None:
        return []
    template = "generation_section.j2" if report.get("task") == "generation" else "section.j2"
    html = render_template(__name__, template, n=result["evidence"]["n"], notes=result.get("notes", []),
                           metrics=result["metrics"], ev=result["evidence"], confusion_chart=confusion_chart)
    return [ReportSection(title="Accuracy", html=html, anchor="audit-accuracy", order=20)]
