"""The ``calibration`` audit run: per-row confidence and correctness of the adapter and the base
model on the test rows, then the figures (``figures``), the temperature what-if and the
evidence the report section shows."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.calibration.options import CalibrationOptions
from auditft.records import AuditResult

if TYPE_CHECKING:
    import numpy as np

    from auditft.default_plugins.audits.calibration.figures import Scored
    from auditft.jobs import AuditJob
    from auditft.records import Metric

CLASSIFICATION_NOTE = (
    "Confidence = the top class probability, correct = the top class is the label. ECE: {bins} equal-width "
    "bins, sum over bins of (rows in bin / n) x |accuracy - mean confidence|; ece_equal_mass: {bins} bins of "
    "equal row counts by confidence rank; mce: the largest |accuracy - mean confidence| over non-empty "
    "equal-width bins; brier: mean over rows of sum over classes of (p_k - onehot_k)^2, not divided by the "
    "number of classes (0 = perfect, 2 = worst); overconfidence: mean confidence minus accuracy (negative: "
    "underconfident, which a max gate on it does not catch; gate ece for both directions)."
)
GENERATION_NOTE = (
    "Generation: greedy answers to the test prompts; confidence = exp(mean per-token log-probability the "
    "model gives its own answer), correct = the answer contains the whole normalised reference. Same bins; "
    "brier is the binary (confidence - correct)^2."
)
BASE_NOTE = ("Base figures: classification, the base model's linear probe (logistic regression on frozen "
             "mean-pooled embeddings, fitted on the train split); generation, the base model's own greedy "
             "answers and their token probabilities.")
INTERVAL_NOTE = (
    "95% CIs: seeded percentile bootstrap over test rows ({n_boot} resamples), every figure recomputed on "
    "each resample (equal-mass bins re-formed); deltas are adapter minus base on the same resampled rows. "
    "Binned errors are biased upwards under resampling; where the interval did not contain the point value "
    "its lower end was moved to it (details: widened_to_value). ece_max_group: each group resampled within "
    "itself, worst group per resample."
)
TEMPERATURE_NOTE = (
    "Temperature scaling is a what-if: one temperature T fitted on the validation split ({n} rows; minimum "
    "NLL of softmax(log p / T), T searched in [0.05, 20]) and applied to the test probabilities. "
    "The shipped adapter is unchanged; ece_after_temperature says how much a recalibration would recover."
)


class CalibrationAudit:
    def __init__(self, options: CalibrationOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        started = time.perf_counter()
        if job.task == "generation":
            metrics, evidence, notes = self.generation(job)
        else:
            metrics, evidence, notes = self.classification(job)
        evidence["options"] = self.options.model_dump(mode="json")
        return AuditResult(kind="calibration", metrics=metrics, evidence=evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))

    # -- the two tasks ----------------------------------------------------------------------------------

    def classification(self, job: AuditJob) -> tuple[dict[str, Metric], dict[str, Any], list[str]]:
        import numpy as np

        from auditft.default_plugins.audits.calibration.figures import Scored
        from auditft.default_plugins.audits.calibration.metrics import brier_rows, confidence_correct

        test = job.data.test
        labels = list(job.data.labels)
        y = np.asarray([ex.label for ex in test], dtype=np.int64)
        scored: dict[str, Scored] = {}
        predicted: dict[str, list[str]] = {}
        for which, proba in (("adapter", job.models.adapter_proba("test")), ("base", job.models.base_probe_proba("test"))):
            conf, correct = confidence_correct(proba, y)
            scored[which] = Scored(conf, correct, brier_rows(proba, y))
            predicted[which] = [labels[int(i)] for i in np.asarray(proba).argmax(axis=1)]
        metrics, evidence = self.measure(job, scored)
        notes = [CLASSIFICATION_NOTE.format(bins=self.options.bins), BASE_NOTE,
                 INTERVAL_NOTE.format(n_boot=self.options.n_boot)]
        if self.options.temperature_scaling:
            extra, temperature, note = self.temperature(job, y)
            metrics.update(extra)
            evidence["temperature"] = temperature
            notes.append(note)
        evidence["examples"] = self.examples(job, scored, [labels[int(i)] for i in y], predicted)
        evidence["summary"] = summary(metrics, evidence)
        return metrics, evidence, notes

    def generation(self, job: AuditJob) -> tuple[dict[str, Metric], dict[str, Any], list[str]]:
        import numpy as np

        from auditft.default_plugins.audits.calibration.figures import Scored
        from auditft.textmetrics import contains_answer

        test = job.data.test
        prompts = [ex.text for ex in test]
        references = [ex.response or "" for ex in test]
        answers = {which: job.models.generate(prompts, which=which) for which in ("adapter", "base")}
        logprobs: dict[str, np.ndarray] = {}
        try:
            for which in answers:
                logprobs[which] = np.asarray(job.models.answer_logprobs(prompts, answers[which], which=which),
                                             dtype=float)
        except (NotImplementedError, AttributeError) as exc:
            note = ("No calibration figures: the model session exposes no token probabilities of the answers "
                    f"(answer_logprobs: {type(exc).__name__}: {exc}).")
            return {}, {"task": "generation", "n": len(test), "summary": note}, [note]
        scored: dict[str, Scored] = {}
        for which in answers:
            conf = np.clip(np.exp(logprobs[which]), 0.0, 1.0)
            correct = np.asarray([contains_answer(a, r) for a, r in zip(answers[which], references)], dtype=float)
            scored[which] = Scored(conf, correct, (conf - correct) ** 2)
        metrics, evidence = self.measure(job, scored)
        evidence["examples"] = self.examples(job, scored, references, answers)
        evidence["summary"] = summary(metrics, evidence)
        notes = [GENERATION_NOTE, BASE_NOTE, INTERVAL_NOTE.format(n_boot=self.options.n_boot),
                 "Temperature scaling is not offered for generation (a per-token temperature changes the answers)."]
        return metrics, evidence, notes

    # -- shared -----------------------------------------------------------------------------------------

    def measure(self, job: AuditJob, scored: dict[str, Scored]) -> tuple[dict[str, Metric], dict[str, Any]]:
        from auditft.default_plugins.audits.calibration.figures import headline, per_group
        from auditft.default_plugins.audits.calibration.metrics import bin_table

        opts = self.options
        adapter, base = scored["adapter"], scored.get("base")
        evidence: dict[str, Any] = {"task": job.task, "n": adapter.n, "bins": opts.bins, "n_boot": opts.n_boot}
        if adapter.n == 0:
            return {}, {**evidence, "summary": "No test rows: no calibration figures."}
        metrics = headline(adapter, base, bins=opts.bins, n_boot=opts.n_boot, seed=job.seed)
        evidence["bin_table"] = {which: bin_table(s.confidence, s.correct, opts.bins) for which, s in scored.items()}
        evidence["accuracy"] = {which: float(s.correct.mean()) for which, s in scored.items()}
        evidence["mean_confidence"] = {which: float(s.confidence.mean()) for which, s in scored.items()}
        columns = list(job.data.group_columns)
        if columns:
            groups = [dict(ex.groups) for ex in job.data.test]
            extra, table = per_group(adapter, base, groups, columns, bins=opts.bins, n_boot=opts.n_boot,
                                     seed=job.seed, min_group_size=opts.min_group_size)
            metrics.update(extra)
            evidence["groups"] = table
            evidence["min_group_size"] = opts.min_group_size
        return metrics, evidence

    def temperature(self, job: AuditJob, y: np.ndarray) -> tuple[dict[str, Metric], dict[str, Any], str]:
        """The what-if: T fitted on the validation split, the test ECE after it."""
        import numpy as np

        from auditft.default_plugins.audits.calibration.figures import BOOTSTRAP, to_metric
        from auditft.default_plugins.audits.calibration.metrics import (
            calibration_errors,
            confidence_correct,
            fit_temperature,
            point_index,
            temperature_scale,
        )

        validation = [ex for ex in job.data.validation if ex.label is not None]
        if not validation or len(validation) != len(job.data.validation):
            note = "Temperature scaling skipped: the validation split is empty (or unlabelled)."
            return {}, {"skipped": note}, note
        y_val = np.asarray([ex.label for ex in validation], dtype=np.int64)
        t, before, after = fit_temperature(job.models.adapter_proba("validation"), y_val)
        scaled = temperature_scale(job.models.adapter_proba("test"), t)
        conf, correct = confidence_correct(scaled, y)
        n, bins = len(y), self.options.bins
        idx = np.random.default_rng(job.seed).integers(0, n, size=(self.options.n_boot, n))
        value = float(calibration_errors(conf, correct, point_index(n), bins)["ece"][0])
        samples = calibration_errors(conf, correct, idx, bins)["ece"]
        metric = to_metric(value, samples, n=n, method=BOOTSTRAP)
        evidence = {"fitted": t, "n_validation": len(validation), "validation_nll_before": before,
                    "validation_nll_after": after, "ece_after": value,
                    "mean_confidence_after": float(conf.mean())}
        return {"ece_after_temperature": metric}, evidence, TEMPERATURE_NOTE.format(n=len(validation))

    def examples(self, job: AuditJob, scored: dict[str, Scored], truth: list[str],
                 shown: dict[str, list[str]]) -> list[dict[str, Any]]:
        """The most confidently wrong test rows of the adapter."""
        import numpy as np

        adapter, base = scored["adapter"], scored.get("base")
        wrong = np.flatnonzero(adapter.correct == 0)
        order = wrong[np.argsort(-adapter.confidence[wrong], kind="stable")][: self.options.max_examples]
        test = job.data.test
        return [{"row": test[i].row, "source": test[i].source, "text": test[i].text, "truth": truth[i],
                 "predicted": shown["adapter"][i], "confidence": float(adapter.confidence[i]),
                 "base_predicted": shown["base"][i] if "base" in shown else None,
                 "base_confidence": float(base.confidence[i]) if base is not None else None,
                 "groups": dict(test[i].groups)} for i in order]


def summary(metrics: dict[str, Metric], evidence: dict[str, Any]) -> str:
    """One sentence for the model card: the headline ECE, the base's, the overconfidence."""
    ece = metrics.get("ece")
    if ece is None:
        return "No calibration figures."
    text = f"ECE {ece.value:.3f} [{ece.ci_low:.3f}, {ece.ci_high:.3f}] on {ece.n} test rows"
    if ece.base_value is not None:
        text += f" (base {ece.base_value:.3f})"
    over = metrics.get("overconfidence")
    if over is not None:
        text += f"; {'overconfident' if over.value >= 0 else 'underconfident'} by {abs(over.value):.3f}"
    worst = metrics.get("ece_max_group")
    if worst is not None:
        group = next((g for g in evidence.get("groups", []) if g.get("worst")), None)
        if group is not None:
            text += f"; worst group {group['column']}={group['value']} ECE {worst.value:.3f}"
    after = metrics.get("ece_after_temperature")
    if after is not None:
        text += f"; {after.value:.3f} after temperature scaling (T={evidence['temperature']['fitted']:.2f}, what-if)"
    return text + "."
