"""The ``robustness`` audit run: perturb a seeded sample of the test inputs with each family,
score the adapter and the base model on the originals and the perturbed copies, and turn the
pairs into figures (``scoring``), per-group identity flips and the worst examples."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.robustness.metrics import MIN_N, MODELS
from auditft.default_plugins.audits.robustness.options import RobustnessOptions
from auditft.default_plugins.audits.robustness.scoring import Perturbed, clusters_of, row_key, summary
from auditft.records import AuditResult, Metric

if TYPE_CHECKING:
    import numpy as np

    from auditft.data import Example
    from auditft.default_plugins.audits.robustness.wordlists import WordLists
    from auditft.jobs import AuditJob

METHOD_NOTE = (
    "Perturbations are seeded per row (suite seed, family, row), so a rerun perturbs the same rows the same way. "
    "char_noise: typos in {rate:.0%} of a row's words (adjacent letters swapped, a letter dropped or doubled, case "
    "flipped, a space doubled or dropped, punctuation added or removed); word_edits: meaning-preserving rewrites of "
    "{rate:.0%} of the edit sites (abbreviations and contractions both ways, 3 <-> three, 1000 <-> 1,000); "
    "identity_swap: every listed name, pronoun, ethnicity term and group-column value swapped for one of another "
    "group. A family that cannot change a row leaves it out of that family's figures."
)
CLASSIFICATION_NOTE = (
    "flip_rate_<family>: share of perturbed rows whose predicted class changes; accuracy_<family>: accuracy on the "
    "perturbed rows; accuracy_drop_<family>: accuracy on the same rows unperturbed minus perturbed. The base model "
    "is the linear probe on its frozen embeddings (the accuracy audit's base), applied to the perturbed texts."
)
GENERATION_NOTE = (
    "consistency_<family>: share of perturbed prompts whose greedy answer matches the answer to the original prompt "
    "(normalised token F1 >= {threshold:g}; identity-swapped answers are swapped back first, so repeating the new "
    "name is no change); accuracy_<family>: the reference contained in the perturbed answer; accuracy_drop_<family>: "
    "clean minus perturbed on the same prompts."
)
INTERVAL_NOTE = (
    "95% CIs: shares over fewer than 300 rows get the exact Clopper-Pearson interval, other figures a percentile "
    "bootstrap ({n_boot} resamples); deltas are adapter minus base, paired on the same resampled rows. flip_rate and "
    "consistency pool every family's rows and resample test rows as clusters (a row perturbed twice counts twice)."
)


def perturb(examples: list[Example], families: list[str], lists: WordLists, *, seed: int,
            rate: float) -> list[Perturbed]:
    """Every family applied to every sampled row (rows it cannot change are left out)."""
    from auditft.default_plugins.audits.robustness.perturbations import family, identity_replacements, row_rng

    out = []
    for name in families:
        fn = family(name, lists=lists, rate=rate)
        batch = Perturbed(name)
        for pos, ex in enumerate(examples):
            rng = row_rng(seed, name, f"{ex.source}:{ex.row}")
            mapping: dict[str, str] = {}
            if name == "identity_swap":  # the same draw as identity_swap, plus what was swapped
                swapped = identity_replacements(ex.text, rng, lists=lists)
                text, mapping = swapped if swapped is not None else (None, {})
            else:
                text = fn(ex.text, rng)
            if text is not None:
                batch.positions.append(pos)
                batch.texts.append(text)
                batch.mappings.append(mapping)
        out.append(batch)
    return out


class RobustnessAudit:
    def __init__(self, options: RobustnessOptions) -> None:
        self.options = options

    def word_lists(self, job: AuditJob) -> WordLists:
        from auditft.default_plugins.audits.robustness.wordlists import load_word_lists

        path = job.suite.resolve(self.options.word_lists) if self.options.word_lists else None
        values: dict[str, list[str]] = {}
        for split in (job.data.train, job.data.test):
            for ex in split:
                for column in job.data.group_columns:
                    if column in ex.groups:
                        values.setdefault(column, []).append(ex.groups[column])
        return load_word_lists(path, values)

    def run(self, job: AuditJob) -> AuditResult:
        from auditft.default_plugins.audits.robustness.scoring import stratified_sample

        started = time.perf_counter()
        opts = self.options
        lists = self.word_lists(job)
        test = job.data.test
        cap = opts.max_rows or (200 if job.task == "generation" else 1000)
        chosen = stratified_sample([ex.label for ex in test], cap, job.seed)
        examples = [test[i] for i in chosen]
        batches = perturb(examples, opts.families, lists, seed=job.seed, rate=opts.rate)
        if job.task == "generation":
            from auditft.default_plugins.audits.robustness.generation import score_generation

            metrics, evidence = score_generation(job, opts, examples, chosen, batches)
            notes = [GENERATION_NOTE.format(threshold=opts.consistency_threshold)]
        else:
            metrics, evidence = self.score_classification(job, examples, chosen, batches)
            notes = [CLASSIFICATION_NOTE]
        notes = [METHOD_NOTE.format(rate=opts.rate), *notes, INTERVAL_NOTE.format(n_boot=opts.n_boot)]
        if len(chosen) < len(test):
            notes.append(f"{len(chosen)} of {len(test)} test rows perturbed (option max_rows; a seeded sample "
                         "stratified by label).")
        empty = [b.family for b in batches if not b.positions]
        if empty:
            notes.append(f"No test row could be perturbed by {', '.join(empty)}: those figures have n=0 "
                         "(insufficient); identity_swap needs a listed name, pronoun, ethnicity term or group value.")
        evidence.update({"n_test": len(test), "n_rows": len(chosen), "families": opts.families,
                         "word_lists": lists.describe(), "options": opts.model_dump(mode="json")})
        return AuditResult(kind="robustness", metrics=metrics, evidence=evidence, notes=notes,
                           seconds=round(time.perf_counter() - started, 3))

    def score_classification(self, job: AuditJob, examples: list[Example], chosen: list[int],
                             batches: list[Perturbed]) -> tuple[dict[str, Metric], dict[str, Any]]:
        import numpy as np

        from auditft.default_plugins.audits.robustness import scoring

        opts = self.options
        y = np.array([ex.label for ex in examples], dtype=np.int64)
        clean = {"adapter": job.models.adapter_proba("test")[chosen],
                 "base": job.models.base_probe_proba("test")[chosen]}
        texts = [t for b in batches for t in b.texts]
        # one call per model over every family's texts: one batched pass, one cache entry
        pert_all = {which: job.models.proba_texts(texts, which=which) if texts else np.zeros((0, clean[which].shape[1]))
                    for which in MODELS}
        clusters = clusters_of(job, examples)
        metrics: dict[str, Metric] = {}
        evidence: dict[str, Any] = {"task": "classification", "labels": list(job.data.labels), "per_family": {},
                                    "examples": {}, "n_boot": opts.n_boot}
        pooled: dict[str, list[np.ndarray]] = {w: [] for w in MODELS}
        pooled_keys: list[str] = []
        start = 0
        for batch in batches:
            pos = np.array(batch.positions, dtype=np.int64)
            pert = {w: pert_all[w][start:start + len(pos)] for w in MODELS}
            start += len(pos)
            if not len(pos):
                metrics.update(scoring.empty_metrics(("accuracy", "flip_rate", "accuracy_drop"), batch.family))
                if batch.family == "identity_swap":
                    metrics["identity_flip_rate_max_group"] = scoring.group_flips(
                        [], np.zeros(0), np.zeros(0), job.data.group_columns, opts.min_group_size)[1]
                evidence["per_family"][batch.family] = {"n": 0}
                continue
            scores = {}
            for w in MODELS:
                before, after = clean[w][pos].argmax(axis=1), pert[w].argmax(axis=1)
                scores[w] = {"accuracy": (after == y[pos]).astype(float), "flip_rate": (after != before).astype(float),
                             "accuracy_drop": (before == y[pos]).astype(float) - (after == y[pos]).astype(float)}
                pooled[w].append(scores[w]["flip_rate"])
            pooled_keys += [row_key(examples[p]) for p in pos]
            metrics.update(scoring.family_metrics(
                scores["adapter"], scores["base"], batch.family, seed=job.seed, n_boot=opts.n_boot,
                proportions=("accuracy", "flip_rate"), clusters=None if clusters is None else [clusters[p] for p in pos]))
            evidence["per_family"][batch.family] = {
                "n": int(len(pos)), "flips": int(scores["adapter"]["flip_rate"].sum()),
                "base_flips": int(scores["base"]["flip_rate"].sum()),
                "clean_accuracy": float((clean["adapter"][pos].argmax(axis=1) == y[pos]).mean()),
                "base_clean_accuracy": float((clean["base"][pos].argmax(axis=1) == y[pos]).mean())}
            evidence["examples"][batch.family] = self._worst(job, examples, batch, clean, pert, y)
            if batch.family == "identity_swap":
                rows, metric = scoring.group_flips([examples[p].groups for p in pos], scores["adapter"]["flip_rate"],
                                                   scores["base"]["flip_rate"], job.data.group_columns,
                                                   opts.min_group_size)
                evidence["identity_groups"] = rows
                metrics["identity_flip_rate_max_group"] = metric
        metrics.update(scoring.pooled_metric(pooled, pooled_keys, "flip_rate", seed=job.seed, n_boot=opts.n_boot))
        worst = scoring.worst_metric(metrics, opts.families, "flip_rate", higher_worse=True, min_n=MIN_N)
        if worst is not None:
            metrics["worst_flip_rate"] = worst[1]
        evidence["summary"] = summary(metrics, worst, "flip rate", len(examples))
        return metrics, evidence

    def _worst(self, job: AuditJob, examples: list[Example], batch: Perturbed, clean: dict[str, np.ndarray],
               pert: dict[str, np.ndarray], y: np.ndarray) -> list[dict[str, Any]]:
        """Flipped rows first, then the largest loss of confidence in the original prediction."""
        import numpy as np

        labels = job.data.labels
        pos = np.array(batch.positions, dtype=np.int64)
        before = clean["adapter"][pos].argmax(axis=1)
        after = pert["adapter"].argmax(axis=1)
        conf = clean["adapter"][pos, before]
        conf_after = pert["adapter"][np.arange(len(pos)), before]
        order = sorted(range(len(pos)), key=lambda k: (before[k] == after[k], -(conf[k] - conf_after[k]), k))
        out = []
        for k in order[:self.options.max_examples]:
            ex = examples[pos[k]]
            out.append({"row": ex.row, "source": ex.source, "text": ex.text, "perturbed": batch.texts[k],
                        "label": labels[int(y[pos[k]])], "predicted": labels[int(before[k])],
                        "perturbed_predicted": labels[int(after[k])], "flipped": bool(before[k] != after[k]),
                        "confidence": float(conf[k]), "perturbed_confidence": float(conf_after[k]),
                        "confidence_change": float(conf_after[k] - conf[k]),
                        "base_flipped": bool(clean["base"][pos[k]].argmax() != pert["base"][k].argmax()),
                        "groups": ex.groups})
        return out
