"""The ``hallucination`` audit run: greedy answers and samples from the adapter and the base
model on the probes, then ``evaluate`` and the notes that explain the figures."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from auditft.default_plugins.audits.hallucination.metrics import MODELS
from auditft.default_plugins.audits.hallucination.options import HallucinationOptions
from auditft.records import AuditResult

if TYPE_CHECKING:
    from pathlib import Path

    from auditft.jobs import AuditJob

DEFINITION_NOTE = (
    "hallucination_rate = share of all probes where the model asserts unsupported content: an answerable "
    "probe answered without the reference and without abstaining, an unanswerable probe (about an entity "
    "that does not exist) answered instead of declined, or a grounded answer with more than {threshold:g} "
    "of its content words absent from the passage."
)
METHOD_NOTE = (
    "Greedy answers with the model's chat template, for the adapter and for the base model. answerable_accuracy "
    "counts an answer that contains the whole normalised reference (chat models answer in sentences); exact match "
    "and token F1 use SQuAD normalisation. Abstention is a fixed phrase list (auditft.textmetrics.ABSTENTIONS). "
    "Content words are normalised tokens minus a small stopword list; a word is supported when the passage "
    "contains the same normalised token (no stemming or synonyms). self_consistency is the mean pairwise unigram "
    "Jaccard overlap of {samples} answers sampled at temperature {temperature:g} for {k} probes."
)


class HallucinationAudit:
    def __init__(self, options: HallucinationOptions) -> None:
        self.options = options

    def probe_path(self, job: AuditJob) -> Path:
        from auditft.default_plugins.audits.hallucination.probes import bundled_probes

        return job.suite.resolve(self.options.probes) if self.options.probes else bundled_probes()

    def run(self, job: AuditJob) -> AuditResult:
        from auditft.default_plugins.audits.hallucination.evaluation import evaluate
        from auditft.default_plugins.audits.hallucination.probes import consistency_subset, load_probes
        from auditft.stats import EXACT_BELOW

        started = time.perf_counter()
        opts = self.options
        path = self.probe_path(job)
        probes = load_probes(path)
        prompts = [p.prompt for p in probes]
        declare = getattr(job.models, "declare_unanswerable", None)
        if callable(declare):  # core: declining these is right, not a sign of a degenerate model
            declare([p.prompt for p in probes if p.type == "unanswerable"])
        answers = {which: job.models.generate(prompts, which=which, max_new_tokens=opts.max_new_tokens)
                   for which in MODELS}
        subset = consistency_subset(probes, opts.consistency_probes)
        samples: dict[str, list[list[str]]] = {which: [] for which in MODELS}
        if subset:
            sub_prompts = [probes[i].prompt for i in subset]
            samples = {which: job.models.sample(sub_prompts, which=which, n=opts.samples,
                                                temperature=opts.temperature, max_new_tokens=opts.max_new_tokens)
                       for which in MODELS}
        result = evaluate(probes, answers, samples, subset, seed=job.seed, n_boot=opts.n_boot,
                          unsupported_threshold=opts.unsupported_threshold, max_examples=opts.max_examples)
        result.evidence["probe_file"] = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                         "bundled": opts.probes is None}
        result.evidence["options"] = opts.model_dump(mode="json")
        notes = [DEFINITION_NOTE.format(threshold=opts.unsupported_threshold),
                 METHOD_NOTE.format(samples=opts.samples, temperature=opts.temperature, k=len(subset)),
                 f"95% CIs: rates (shares of probes) over fewer than {EXACT_BELOW} probes get the exact "
                 f"Clopper-Pearson interval, other figures a percentile bootstrap over probes ({opts.n_boot} "
                 "resamples); deltas are adapter minus base, paired on the same resampled probes, and each rate's "
                 "delta carries the two-sided exact McNemar test on the probes where exactly one model scores."]
        missing = [t for t, n in result.evidence["counts"].items() if n == 0]
        if missing:
            notes.append(f"The probe file has no {' or '.join(missing)} probes; their metrics are absent.")
        return AuditResult(kind="hallucination", metrics=result.metrics, evidence=result.evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))
