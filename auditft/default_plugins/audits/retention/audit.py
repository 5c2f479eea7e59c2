"""The ``retention`` audit run: held-out general probes answered by the adapter and by the
base model (greedy generation), scored, then ``retention_metrics`` and the evidence the report
shows."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.retention.metrics import per_category, retention_metrics, summary
from auditft.default_plugins.audits.retention.options import BUILTIN, RetentionOptions
from auditft.records import AuditResult

if TYPE_CHECKING:
    from pathlib import Path

    from auditft.default_plugins.audits.retention.probes import Probe
    from auditft.jobs import AuditJob

MODELS = ("adapter", "base")
METHOD_NOTE = ("Greedy answers with the model's chat template, from the adapter and from the base model, to general "
               "probes that are not in the fine-tuning data. An answer is correct when it contains the reference or "
               "an accepted alternative as whole words after SQuAD normalisation "
               "(auditft.textmetrics.contains_answer), so a chatty '7 + 5 = 12' answers '12'.")
CI_NOTE = ("95% CIs: retained_accuracy and forgotten_rate are shares with the exact Clopper-Pearson interval (below "
           "300 probes); retention_drop (base minus adapter accuracy) is a paired percentile bootstrap over probes "
           "({n_boot} resamples) with the exact McNemar test; retention_drop_max_category a stratified paired "
           "bootstrap. retention_drop, forgotten_rate and the category maximum count as evidence only with at least "
           "{floor} probes the base model answers correctly (their n): a base that knows nothing has nothing to "
           "forget, and a drop of 0 must not pass a gate for that reason.")


class RetentionAudit:
    def __init__(self, options: RetentionOptions) -> None:
        self.options = options

    def probe_path(self, job: AuditJob) -> Path:
        from auditft.default_plugins.audits.retention.probes import bundled_probes

        return bundled_probes() if self.options.probes == BUILTIN else job.suite.resolve(self.options.probes)

    def run(self, job: AuditJob) -> AuditResult:
        from auditft.default_plugins.audits.retention.probes import load_probes, not_held_out, select
        from auditft.errors import DataError

        started = time.perf_counter()
        opts = self.options
        path = self.probe_path(job)
        every = load_probes(path)
        unknown = sorted(set(opts.categories or []) - {p.category for p in every})
        if unknown:
            raise DataError(f"{path}: no probe has category {unknown[0]!r} (option categories; the file has: "
                            f"{', '.join(sorted({p.category for p in every}))})")
        loaded = select(every, opts.categories, opts.max_probes)
        training = [ex.text for ex in [*job.data.train, *job.data.validation]]
        excluded = not_held_out(loaded, training)
        dropped = {p.id for p in excluded}
        probes = [p for p in loaded if p.id not in dropped]
        notes = [METHOD_NOTE]
        if excluded:
            notes.append(f"{len(excluded)} of {len(loaded)} probes were excluded: their prompt occurs in the "
                         "fine-tuning data (train or validation split), so they are not held out.")
        if not probes:
            raise DataError(f"{path}: every probe ({len(loaded)}) occurs in the fine-tuning data (train or "
                            "validation split), so none is held out; use probes the tuner did not see")
        answers, correct = _score(job, probes, opts.max_new_tokens)
        categories = [p.category for p in probes]
        metrics = retention_metrics(correct["adapter"], correct["base"], categories, seed=job.seed,
                                    n_boot=opts.n_boot, min_base_correct=opts.min_base_correct)
        notes.append(CI_NOTE.format(n_boot=opts.n_boot, floor=opts.min_base_correct))
        known = int(sum(correct["base"]))
        if known < opts.min_base_correct:
            notes.append(f"The base model answers only {known} of {len(probes)} probes correctly (fewer than "
                         f"min_base_correct {opts.min_base_correct}): it has too little to forget for "
                         "retention_drop or forgotten_rate to be evidence; use probes the base model knows.")
        evidence: dict[str, Any] = {
            "n": len(probes),
            "probe_file": {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                           "bundled": opts.probes == BUILTIN},
            "excluded": {"count": len(excluded), "ids": [p.id for p in excluded[:50]]},
            "base_correct": known, "adapter_correct": int(sum(correct["adapter"])),
            "gained": sum(1 for a, b in zip(correct["adapter"], correct["base"]) if a and not b),
            "categories": per_category(correct["adapter"], correct["base"], categories),
            "forgotten": _forgotten(probes, answers, correct, opts.max_examples),
            "summary": summary(metrics, len(probes)),
            "options": opts.model_dump(mode="json"),
        }
        return AuditResult(kind="retention", metrics=metrics, evidence=evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))


def _score(job: AuditJob, probes: list[Probe],
           max_new_tokens: int | None) -> tuple[dict[str, list[str]], dict[str, list[float]]]:
    """Each model's greedy answers and per-probe correctness (1.0: an accepted answer contained)."""
    from auditft.textmetrics import contains_answer

    prompts = [p.prompt for p in probes]
    answers: dict[str, list[str]] = {}
    correct: dict[str, list[float]] = {}
    for which in MODELS:
        answers[which] = job.models.generate(prompts, which=which, max_new_tokens=max_new_tokens)
        if len(answers[which]) != len(probes):
            raise RuntimeError(f"the {which} model returned {len(answers[which])} answers to {len(probes)} probes")
        correct[which] = [float(any(contains_answer(a, ref) for ref in p.answers))
                          for a, p in zip(answers[which], probes, strict=True)]
    return answers, correct


def _forgotten(probes: list[Probe], answers: dict[str, list[str]], correct: dict[str, list[float]],
               k: int) -> list[dict[str, Any]]:
    """The first ``k`` probes (file order) the base model answers correctly and the adapter does not."""
    rows = [i for i in range(len(probes)) if correct["base"][i] and not correct["adapter"][i]][:k]
    return [{"id": probes[i].id, "category": probes[i].category, "prompt": probes[i].prompt,
             "reference": probes[i].reference, "answer": answers["adapter"][i], "base_answer": answers["base"][i]}
            for i in rows]
