"""Audit ``robustness``: do predictions survive changes to the input that should not matter?

Seeded, documented perturbations of the test inputs (``perturbations``), in three families:
``char_noise`` (typos, case, whitespace, punctuation), ``word_edits`` (abbreviations,
contractions, number formats: the meaning is kept) and ``identity_swap`` (names, pronouns,
ethnicity terms and the values of the suite's group columns swapped across groups, from editable
lists: ``wordlists``). Each row's perturbation is seeded from the suite's seed, the family and
the row, so runs are reproducible.

Classification: per family ``flip_rate_<family>`` (share of perturbed rows whose predicted class
changes), ``accuracy_<family>`` and ``accuracy_drop_<family>`` (clean minus perturbed on the same
rows); headlines ``flip_rate`` (every family's rows) and ``worst_flip_rate``; identity-swap flips
per group of the original row, with ``identity_flip_rate_max_group`` linking to ``fairness``.
Generation: ``consistency_<family>`` (the perturbed prompt's greedy answer still matches the
original's, token F1 >= ``consistency_threshold``), ``accuracy_<family>`` (the reference
contained), ``accuracy_drop_<family>``; headlines ``consistency`` and ``worst_consistency``.

Every figure has a 95% CI, ``n``, the base model's figure (classification: the linear probe on
its frozen embeddings, applied to the perturbed texts) and a paired ``_delta``. A constant model
never flips and answers consistently, so flip rates, drops and consistency are declared trivial.

The package: ``perturbations`` and ``wordlists`` (pure text functions and their lists),
``metrics`` (the metric table), ``options``, ``audit`` / ``generation`` / ``scoring`` (the run),
``section`` + ``section.j2`` (the report). Only this module and the metric table load to register.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditft import hookimpl
from auditft.default_plugins.audits.robustness.metrics import (
    METRIC_DIRECTIONS,
    MIN_N,
    PROPORTIONS,
    TRIVIAL_METRICS,
)
from auditft.default_plugins.audits.robustness.options import RobustnessOptions
# the report hook lives with its template; re-exported so the plugin module carries both hooks
from auditft.default_plugins.audits.robustness.section import auditft_report_sections

if TYPE_CHECKING:
    from auditft.jobs import AuditJob
    from auditft.records import AuditResult
    from auditft.registry import AuditRegistry

__all__ = ["METRIC_DIRECTIONS", "RobustnessAudit", "RobustnessOptions", "auditft_register_audits",
           "auditft_report_sections"]


class RobustnessAudit:
    """Loads the run's code when the audit runs, not when plugins are listed."""

    def __init__(self, options: RobustnessOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        from auditft.default_plugins.audits.robustness.audit import RobustnessAudit as Run

        return Run(self.options).run(job)


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "robustness",
        RobustnessAudit,
        summary="seeded perturbations (typos, meaning-preserving edits, identity swaps): flip rates, accuracy "
                "under perturbation, answer consistency, per-group identity flips, with CIs, adapter vs base",
        tasks=("classification", "generation"),
        options=RobustnessOptions,
        metrics=METRIC_DIRECTIONS,
        min_n=MIN_N,
        trivial_metrics=TRIVIAL_METRICS,
        proportion_metrics=PROPORTIONS,
        limitations=(
            "English word lists, short on purpose: a family that finds nothing to change in a row leaves it out, so "
            "identity_swap measures only rows that mention a listed name, pronoun, ethnicity term or group value",
            "perturbations are rule-based, not paraphrases: word_edits keeps the meaning by construction of its "
            "lists, char_noise models typing slips only (no OCR or speech errors)",
            "swapped names are proxies for identity, not identities; a flip shows dependence on the term, not harm",
            "the base figure for classification is a linear probe, not a zero-shot classifier",
            "generation consistency compares answers by token F1, not meaning",
        ),
    )
