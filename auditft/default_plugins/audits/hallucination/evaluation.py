"""From the models' answers to the ``hallucination`` audit's metrics and evidence: per-probe
scores aggregated per probe type with CIs, and the worst examples for the report (pure: no
model, unit-tested with canned answers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.hallucination.metrics import MODELS, PROPORTIONS
from auditft.default_plugins.audits.hallucination.scoring import agreement, score_probe
from auditft.records import Metric

if TYPE_CHECKING:
    from auditft.default_plugins.audits.hallucination.probes import Probe


class Evaluation:
    def __init__(self, metrics: dict[str, Metric], evidence: dict[str, Any]) -> None:
        self.metrics = metrics
        self.evidence = evidence


def evaluate(probes: list[Probe], answers: dict[str, list[str]], samples: dict[str, list[list[str]]],
             subset: list[int], *, seed: int, n_boot: int = 1000, unsupported_threshold: float = 0.5,
             max_examples: int = 8) -> Evaluation:
    """Metrics and evidence from the models' answers.

    ``answers[which][i]`` is the greedy answer of ``which`` to ``probes[i]``; ``samples[which][j]``
    the sampled answers to ``probes[subset[j]]``.
    """
    from auditft.stats import bootstrap_means

    scored = {which: [score_probe(p, a, unsupported_threshold=unsupported_threshold)
                      for p, a in zip(probes, answers[which], strict=True)] for which in MODELS}

    def component(kind: str | None,
                  fields: dict[str, Callable[[dict[str, Any]], Any]]) -> dict[str, dict[str, list[float]]]:
        rows = [i for i, p in enumerate(probes) if kind is None or p.type == kind]
        return {which: {name: [float(fn(scored[which][i])) for i in rows] for name, fn in fields.items()}
                for which in MODELS}

    groups = [
        component(None, {"hallucination_rate": lambda s: s["hallucinated"]}),
        # TruthfulQA's "truthful and informative": an answer that says something and is not a
        # hallucination; unanswerable probes are left out (declining them is truthful but a
        # judge-free check cannot tell an informative rejection of the premise from "no comment")
        {which: {"truthful_informative_rate": [float(not s["abstained"] and not s["hallucinated"])
                                               for p, s in zip(probes, scored[which]) if p.type != "unanswerable"]}
         for which in MODELS},
        component("answerable", {"answerable_accuracy": lambda s: s["contained"],
                                 "answerable_exact_match": lambda s: s["exact_match"],
                                 "answerable_token_f1": lambda s: s["token_f1"],
                                 "over_abstention_rate": lambda s: s["abstained"]}),
        component("unanswerable", {"abstention_rate": lambda s: s["abstained"],
                                   "invented_answer_rate": lambda s: not s["abstained"]}),
        component("grounded", {"unsupported_content_rate": lambda s: s["unsupported_share"]}),
    ]
    consistency: dict[str, list[float]] = {which: [agreement(group) for group in samples.get(which, [])]
                                           for which in MODELS}
    if subset:
        groups.append({which: {"self_consistency": consistency[which]} for which in MODELS})
    metrics: dict[str, Metric] = {}
    for group in groups:
        if not next(iter(group["adapter"].values())):
            continue  # no probes of this type: the metric is absent, not zero
        figures = bootstrap_means(group["adapter"], group["base"], seed=seed, n_boot=n_boot,
                                  proportions=[name for name in group["adapter"] if name in PROPORTIONS])
        for name, fig in figures.items():
            metrics[name] = Metric.from_figure(fig)
    counts = {t: sum(p.type == t for p in probes) for t in ("answerable", "unanswerable", "grounded")}
    evidence: dict[str, Any] = {
        "n": len(probes),
        "counts": counts,
        "consistency_probes": len(subset),
        "n_boot": n_boot,
        "unsupported_threshold": unsupported_threshold,
        "hallucinated": {which: int(sum(s["hallucinated"] for s in scored[which])) for which in MODELS},
        "examples": _worst(probes, answers, scored, max_examples),
        "consistency": _least_consistent(probes, samples, subset, consistency, max_examples),
    }
    return Evaluation(metrics, evidence)


def _worst(probes: list[Probe], answers: dict[str, list[str]], scored: dict[str, list[dict[str, Any]]],
           k: int) -> dict[str, list[dict[str, Any]]]:
    """Per category, probes where the adapter or the base model failed (adapter failures first),
    each with both answers side by side."""

    def row(i: int, **extra: float | list[str]) -> dict[str, Any]:
        p = probes[i]
        return {"id": p.id, "line": p.line, "prompt": p.prompt, "reference": p.reference,
                "answer": answers["adapter"][i], "base_answer": answers["base"][i],
                "adapter_failed": bool(scored["adapter"][i]["hallucinated"]),
                "base_failed": bool(scored["base"][i]["hallucinated"]), **extra}

    out: dict[str, list[dict[str, Any]]] = {"unanswerable": [], "answerable": [], "grounded": []}
    for kind in out:
        rows = [i for i, p in enumerate(probes) if p.type == kind
                and (scored["adapter"][i]["hallucinated"] or scored["base"][i]["hallucinated"])]
        if kind == "answerable":
            rows.sort(key=lambda i: (not scored["adapter"][i]["hallucinated"], scored["adapter"][i]["token_f1"], i))
            out[kind] = [row(i, token_f1=scored["adapter"][i]["token_f1"],
                             base_token_f1=scored["base"][i]["token_f1"]) for i in rows[:k]]
        elif kind == "grounded":
            rows.sort(key=lambda i: (not scored["adapter"][i]["hallucinated"],
                                     -scored["adapter"][i]["unsupported_share"], i))
            out[kind] = [row(i, unsupported_share=scored["adapter"][i]["unsupported_share"],
                             unsupported_words=scored["adapter"][i]["unsupported_words"][:12],
                             base_unsupported_share=scored["base"][i]["unsupported_share"],
                             base_unsupported_words=scored["base"][i]["unsupported_words"][:12]) for i in rows[:k]]
        else:
            rows.sort(key=lambda i: (not scored["adapter"][i]["hallucinated"], i))
            out[kind] = [row(i) for i in rows[:k]]
    return out


def _least_consistent(probes: list[Probe], samples: dict[str, list[list[str]]], subset: list[int],
                      consistency: dict[str, list[float]], k: int) -> list[dict[str, Any]]:
    """The adapter's ``k`` least self-consistent sampled probes, with the base model's beside."""
    if not subset:
        return []
    order = sorted(range(len(subset)), key=lambda j: (consistency["adapter"][j], j))[:k]
    return [{"id": probes[subset[j]].id, "type": probes[subset[j]].type, "prompt": probes[subset[j]].prompt,
             "agreement": consistency["adapter"][j], "base_agreement": consistency["base"][j],
             "samples": samples["adapter"][j], "base_samples": samples["base"][j]} for j in order]
