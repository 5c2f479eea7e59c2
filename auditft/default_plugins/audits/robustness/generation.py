"""Generation half of the ``robustness`` audit: greedy answers to the original and the perturbed
prompts, from the adapter and the base model; consistency (the perturbed answer matches the
original answer) and answer accuracy (the reference contained) per family."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from auditft.default_plugins.audits.robustness import scoring
from auditft.default_plugins.audits.robustness.metrics import MIN_N, MODELS
from auditft.default_plugins.audits.robustness.perturbations import swap_back
from auditft.textmetrics import contains_answer, token_f1

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.robustness.options import RobustnessOptions
    from auditft.jobs import AuditJob
    from auditft.records import Metric


def score_generation(job: AuditJob, opts: RobustnessOptions, examples: list[Example], chosen: list[int],
                     batches: list[scoring.Perturbed]) -> tuple[dict[str, Metric], dict[str, Any]]:
    prompts = [ex.text for ex in examples]
    references = [ex.response or "" for ex in examples]
    texts = [t for b in batches for t in b.texts]
    # the originals as the accuracy audit asks for them when every row is used: a cache hit
    originals = [ex.text for ex in job.data.test] if len(examples) == len(job.data.test) else prompts
    answers: dict[str, list[str]] = {}
    perturbed: dict[str, list[str]] = {}
    for which in MODELS:
        answers[which] = list(job.models.generate(originals, which=which, max_new_tokens=opts.max_new_tokens))
        perturbed[which] = list(job.models.generate(texts, which=which, max_new_tokens=opts.max_new_tokens)) \
            if texts else []
    clusters = scoring.clusters_of(job, examples)
    metrics: dict[str, Metric] = {}
    evidence: dict[str, Any] = {"task": "generation", "per_family": {}, "examples": {}, "n_boot": opts.n_boot,
                                "consistency_threshold": opts.consistency_threshold}
    pooled: dict[str, list[np.ndarray]] = {w: [] for w in MODELS}
    pooled_keys: list[str] = []
    start = 0
    for batch in batches:
        pos = batch.positions
        if not pos:
            metrics.update(scoring.empty_metrics(("accuracy", "consistency", "accuracy_drop"), batch.family))
            evidence["per_family"][batch.family] = {"n": 0}
            continue
        scores: dict[str, dict[str, np.ndarray]] = {}
        f1s: dict[str, list[float]] = {}
        for w in MODELS:
            after = perturbed[w][start:start + len(pos)]
            f1s[w] = [token_f1(swap_back(a, m), answers[w][p]) for a, m, p in zip(after, batch.mappings, pos)]
            right = np.array([contains_answer(a, references[p]) for a, p in zip(after, pos)])
            right_before = np.array([contains_answer(answers[w][p], references[p]) for p in pos])
            scores[w] = {"accuracy": right, "consistency": (np.array(f1s[w]) >= opts.consistency_threshold) * 1.0,
                         "accuracy_drop": right_before - right}
            pooled[w].append(scores[w]["consistency"])
        pooled_keys += [scoring.row_key(examples[p]) for p in pos]
        metrics.update(scoring.family_metrics(
            scores["adapter"], scores["base"], batch.family, seed=job.seed, n_boot=opts.n_boot,
            proportions=("accuracy", "consistency"), clusters=None if clusters is None else [clusters[p] for p in pos]))
        evidence["per_family"][batch.family] = {
            "n": len(pos), "inconsistent": int(len(pos) - scores["adapter"]["consistency"].sum()),
            "base_inconsistent": int(len(pos) - scores["base"]["consistency"].sum())}
        order = sorted(range(len(pos)), key=lambda k: (f1s["adapter"][k], k))[:opts.max_examples]
        evidence["examples"][batch.family] = [
            {"row": examples[pos[k]].row, "source": examples[pos[k]].source, "prompt": prompts[pos[k]],
             "perturbed": batch.texts[k], "reference": references[pos[k]], "answer": answers["adapter"][pos[k]],
             "perturbed_answer": perturbed["adapter"][start + k], "f1": round(f1s["adapter"][k], 4),
             "consistent": bool(f1s["adapter"][k] >= opts.consistency_threshold),
             "base_answer": answers["base"][pos[k]], "base_perturbed_answer": perturbed["base"][start + k],
             "base_f1": round(f1s["base"][k], 4), "groups": examples[pos[k]].groups} for k in order]
        start += len(pos)
    metrics.update(scoring.pooled_metric(pooled, pooled_keys, "consistency", seed=job.seed, n_boot=opts.n_boot))
    worst = scoring.worst_metric(metrics, opts.families, "consistency", higher_worse=False, min_n=MIN_N)
    if worst is not None:
        metrics["worst_consistency"] = worst[1]
    evidence["summary"] = scoring.summary(metrics, worst, "consistency", len(examples))
    return metrics, evidence
