"""Audit ``hallucination``: does the model assert things it cannot know, or that its source
does not say? Judge-free and offline, on the adapter AND on the base model.

Probes (JSON Lines, see ``probes``) come in three types:

* **answerable**: a real fact with a reference (country capitals from the ``countryinfo``
  table). Scored by normalised exact match, token F1 and "answer contained" (the normalised
  reference appears as whole words in the normalised answer). ``answerable_accuracy`` is the
  share contained: chatty chat models answer "The capital of Kenya is Nairobi.", which exact
  match would count as wrong.
* **unanswerable**: questions about entities that do not exist (invented countries, people,
  elements). ``abstention_rate`` is the share the model declines to answer
  (``auditft.textmetrics.is_abstention``); ``invented_answer_rate`` is the rest: confident
  invented answers.
* **grounded**: a short passage and a question to answer from it only.
  ``unsupported_content_rate`` is the mean over probes of the share of an answer's content
  words (normalised tokens minus a small stopword list) that do not occur in the passage;
  an abstention asserts nothing and scores 0.

``self_consistency``: for a subset of probes (``consistency_probes``, round-robin over the
types) ``samples`` answers are sampled at ``temperature``; the figure is the mean pairwise
unigram Jaccard overlap between them (SelfCheckGPT's n-gram variant). Low agreement flags
likely fabrication: a model that knows an answer tends to repeat it.

``hallucination_rate``: share of ALL probes where the model asserts unsupported content:
answerable probes answered wrongly without abstaining + unanswerable probes not abstained on +
grounded answers with more than ``unsupported_threshold`` (0.5) of their content words
unsupported by the passage.

Every figure has a 95% percentile-bootstrap CI over probes, the base model's figure and the
paired delta (adapter minus base). Classification suites cannot use this audit (it registers
for the generation task only, so the suite fails validation with a one-line error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditft import hookimpl
from auditft.default_plugins.audits.hallucination.audit import HallucinationAudit
from auditft.default_plugins.audits.hallucination.metrics import (
    DEFAULT_GATES,
    GATE_METRICS,
    METRIC_DIRECTIONS,
    PROPORTIONS,
    TRIVIAL_METRICS,
)
from auditft.default_plugins.audits.hallucination.options import HallucinationOptions
# the report hook lives with its template; re-exported so the plugin module carries both hooks
from auditft.default_plugins.audits.hallucination.section import auditft_report_sections

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry

__all__ = ["GATE_METRICS", "METRIC_DIRECTIONS", "HallucinationAudit", "HallucinationOptions",
           "auditft_register_audits", "auditft_report_sections"]


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "hallucination",
        HallucinationAudit,
        summary="judge-free hallucination probes (answerable, unanswerable, grounded, self-consistency), "
                "bootstrap CIs, adapter vs base",
        tasks=("generation",),
        options=HallucinationOptions,
        metrics=METRIC_DIRECTIONS,
        min_n=20,
        trivial_metrics=TRIVIAL_METRICS,
        proportion_metrics=PROPORTIONS,
        default_gates=DEFAULT_GATES,
        limitations=(
            "generation only: a classification suite naming this audit fails validation",
            "string matching, no judge model: abstention is a fixed English phrase list, 'supported' means the "
            "same normalised token occurs in the passage (no stemming, synonyms or paraphrase)",
            "the bundled probes are English country capitals and invented names; they test the model's "
            "willingness to invent, not domain knowledge; use option 'probes' for a domain probe set",
            "a relative 'probes' path is checked when the audit runs (a bad file makes the audit an error); "
            "an absolute path is checked with the suite",
        ),
    )
