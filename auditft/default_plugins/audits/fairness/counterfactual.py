"""Generation half of the ``fairness`` audit: counterfactual probes. Every test prompt with a
term of a shipped swap list gets a twin per dimension (gender, ethnicity); adapter and base
answer both greedily, and a pair is a *material change* when the token F1 between the answers
(the twin's answer swapped back) is below ``change_threshold``.

Imported only when the audit runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from auditft.default_plugins.audits.fairness import stats as fs
from auditft.default_plugins.audits.fairness.metrics import to_metric
from auditft.default_plugins.audits.fairness.swaps import Swapper, swap_sets, swaps_by_dimension
from auditft.records import Metric
from auditft.records import finite_or_none as _num
from auditft.textmetrics import token_f1

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.fairness.options import FairnessOptions
    from auditft.jobs import AuditJob


def _probes(test: list[Example], swappers: dict[str, Swapper]) -> list[dict[str, Any]]:
    """One probe per test prompt and dimension whose swap changes the prompt, in test order."""
    probes: list[dict[str, Any]] = []
    for ex in test:
        for dim, swap in swappers.items():
            swapped = swap(ex.text)
            if swapped != ex.text:
                probes.append({"row": ex.row, "source": ex.source, "dimension": dim,
                               "prompt": ex.text, "swapped": swapped, "groups": ex.groups})
    return probes


def _answer(job: AuditJob, probes: list[dict[str, Any]], swappers: dict[str, Swapper],
            threshold: float) -> dict[str, list[bool]]:
    """Generate every original (once) and every twin with both models; record each pair's F1 and
    change on the probe, and return the change flags per model in probe order."""
    originals = sorted({p["prompt"] for p in probes})
    where = {prompt: i for i, prompt in enumerate(originals)}
    batch = originals + [p["swapped"] for p in probes]
    answers = {which: list(job.models.generate(batch, which=which)) for which in ("adapter", "base")}
    changed: dict[str, list[bool]] = {"adapter": [], "base": []}
    for k, probe in enumerate(probes):
        swap = swappers[probe["dimension"]]
        for which, out in answers.items():
            original, twin = out[where[probe["prompt"]]], out[len(originals) + k]
            f1 = token_f1(original, swap(twin))  # swap the twin's answer back before comparing
            changed[which].append(f1 < threshold)
            probe[which] = {"answer": original, "answer_swapped": twin, "f1": round(f1, 4),
                            "changed": f1 < threshold}
    return changed


def audit_counterfactuals(job: AuditJob, options: FairnessOptions
                          ) -> tuple[dict[str, Metric], dict[str, Any], list[str]]:
    """The generation audit: (metrics, evidence, notes)."""
    notes = ["Generation task: there are no classes, so the per-group classification metrics "
             "(selection rate, TPR/FPR, parity, equalized odds, group accuracy) are not computed."]
    swappers = {dim: Swapper(pairs) for dim, pairs in swaps_by_dimension().items()}
    probes = _probes(job.data.test, swappers)
    found = len(probes)
    probes = probes[:options.max_probes]
    sources = [{"name": s["name"], "file": s["file"], "dimension": s["dimension"], "source": s["source"],
                "pairs": len(s["pairs"])} for s in swap_sets()]
    evidence: dict[str, Any] = {"task": "generation", "n_prompts": len(job.data.test), "probes_found": found,
                                "n": len(probes), "change_threshold": options.change_threshold,
                                "swap_lists": sources, "dimensions": {}, "examples": [], "n_boot": options.n_boot}
    if not probes:
        notes.append("No test prompt contains a swappable term (names, pronouns, ethnicity terms), so "
                     "counterfactual_change_rate has no evidence (n=0, insufficient).")
        return ({"counterfactual_change_rate": Metric(value=0.0, ci_low=0.0, ci_high=1.0, n=0, base_value=None)},
                evidence, notes)
    if found > len(probes):
        notes.append(f"{found} counterfactual pairs found; the first {len(probes)} were used (option max_probes).")
    changed = _answer(job, probes, swappers, options.change_threshold)
    rate = np.asarray(changed["adapter"], dtype=float)
    base_rate = np.asarray(changed["base"], dtype=float)
    idx = fs.bootstrap_indices(len(rate), options.n_boot, job.seed)
    ci = fs.percentile_ci(rate[idx].mean(axis=1))
    metric = to_metric(rate.mean(), ci, n=len(rate), base=base_rate.mean())
    for dim in sorted({p["dimension"] for p in probes}):
        rows = [k for k, p in enumerate(probes) if p["dimension"] == dim]
        evidence["dimensions"][dim] = {"n": len(rows), "change_rate": _num(rate[rows].mean()),
                                       "base_change_rate": _num(base_rate[rows].mean())}
    shown = sorted(range(len(probes)),
                   key=lambda k: (not probes[k]["adapter"]["changed"], probes[k]["adapter"]["f1"], k))
    evidence["examples"] = [probes[k] for k in shown[:options.max_examples]]
    evidence["changed"] = int(rate.sum())
    evidence["base_changed"] = int(base_rate.sum())
    notes.append(f"A counterfactual pair is a test prompt and the same prompt with gendered or "
                 f"ethnicity-associated terms swapped (whole words, case kept); a material change is a "
                 f"normalised token F1 below {options.change_threshold:g} between the two greedy answers "
                 "(the twin's answer swapped back first, so repeating the swapped name is no change).")
    notes.append(f"95% CI: percentile bootstrap over pairs, {options.n_boot} resamples, seeded. The base value "
                 "is the same rate for the base model.")
    return {"counterfactual_change_rate": metric}, evidence, notes
