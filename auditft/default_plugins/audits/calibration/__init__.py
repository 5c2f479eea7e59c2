"""Audit ``calibration``: does the model's confidence mean what it says? On the adapter AND on
the base model, with seeded bootstrap CIs.

Classification: confidence = the top class probability (``adapter_proba("test")``; the base
model's linear probe, ``base_probe_proba("test")``), correct = the top class is the label.
Generation: greedy answers to the test prompts, confidence = exp(mean per-token log-probability
of the answer, ``answer_logprobs``), correct = the answer contains the reference; a session
without token probabilities gives no figures and a note.

Figures (``metrics``): ``ece`` (equal-width bins), ``ece_equal_mass`` (equal-count bins),
``mce``, ``brier`` and ``overconfidence`` (mean confidence minus accuracy), each with the base
figure and a paired ``<name>_delta``; ``ece_max_group``, the worst ECE over the values of the
suite's group columns (a model can be calibrated overall and overconfident for one group); and
the what-if ``ece_after_temperature`` (one temperature fitted on the validation split; the
shipped adapter is not changed). The reliability diagram is inline SVG in the report section.

The package: ``metrics`` (pure numpy figures and the metric table), ``figures`` (bootstrap CIs,
groups), ``audit`` (the run), ``options``, ``section`` with ``section.j2`` and ``reliability.j2``.
Only this module, ``metrics`` and ``options`` load to register the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditft import hookimpl
from auditft.default_plugins.audits.calibration.audit import CalibrationAudit
from auditft.default_plugins.audits.calibration.metrics import METRIC_DIRECTIONS, MIN_N, TRIVIAL_METRICS
from auditft.default_plugins.audits.calibration.options import CalibrationOptions
# the report hook lives with its templates; re-exported so the plugin module carries both hooks
from auditft.default_plugins.audits.calibration.section import auditft_report_sections

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry

__all__ = ["METRIC_DIRECTIONS", "CalibrationAudit", "CalibrationOptions", "auditft_register_audits",
           "auditft_report_sections"]


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        "calibration",
        CalibrationAudit,
        summary="expected / maximum calibration error, Brier, overconfidence, per-group ECE and a reliability "
                "diagram, bootstrap CIs, adapter vs base; temperature-scaling what-if",
        tasks=("classification", "generation"),
        options=CalibrationOptions,
        metrics=METRIC_DIRECTIONS,
        min_n=MIN_N,
        trivial_metrics=TRIVIAL_METRICS,
        limitations=(
            "a model that predicts the class prior for every row is perfectly calibrated: a low ECE says "
            "nothing about usefulness (core's degeneracy rules fail such a model's calibration checks); gate "
            "accuracy too",
            "overconfidence is signed: a max gate on it passes an underconfident model; ece catches both",
            "binned errors depend on the bins and are biased upwards on small test sets (with 10 bins, ~0.05 "
            "at a few hundred rows for a calibrated model); the evidence floor is 50 rows",
            "classification: the base figure is a linear probe on frozen embeddings, not a zero-shot classifier",
            "generation: confidence is the mean per-token probability of the greedy answer and correctness is "
            "'contains the reference'; needs a session with token probabilities (answer_logprobs)",
            "temperature scaling is fitted on the validation split (often small) and is a what-if only",
        ),
    )
