"""The ``robustness`` audit's metrics as the registry and the report see them: names, which
direction is better, which a do-nothing model satisfies trivially, which are shares of rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditft.default_plugins.audits.robustness.perturbations import FAMILIES

if TYPE_CHECKING:
    from auditft.registry import Direction

MODELS = ("adapter", "base")
#: evidence floor: a family's figures over fewer perturbed rows are ``insufficient``
MIN_N = 20

#: per family, both tasks: accuracy on the perturbed rows (classification: the prediction;
#: generation: the reference contained in the answer) and clean minus perturbed on the same rows
_PER_FAMILY: dict[str, Direction] = {"accuracy": "higher", "accuracy_drop": "lower",
                                     # classification: the prediction changed
                                     "flip_rate": "lower",
                                     # generation: the perturbed answer still matches the original answer
                                     "consistency": "higher"}
FAMILY_METRICS: dict[str, Direction] = {f"{name}_{fam}": d for fam in FAMILIES for name, d in _PER_FAMILY.items()}
HEADLINE: dict[str, Direction] = {
    "flip_rate": "lower",  # classification, over every family's perturbed rows
    "worst_flip_rate": "lower",  # the highest family flip rate
    "identity_flip_rate_max_group": "lower",  # identity swaps: the group whose predictions flip most
    "consistency": "higher",  # generation, over every family's perturbed rows
    "worst_consistency": "higher",  # the lowest family consistency
}
GATE_METRICS: dict[str, Direction] = {**FAMILY_METRICS, **HEADLINE}
#: adapter minus base, paired (a delta of a "lower" figure is better lower too)
METRIC_DIRECTIONS: dict[str, Direction] = {**GATE_METRICS, **{f"{k}_delta": d for k, d in GATE_METRICS.items()
                                                               if k not in ("worst_flip_rate", "worst_consistency",
                                                                            "identity_flip_rate_max_group")}}
#: a constant model never flips, loses no accuracy under perturbation and answers consistently;
#: its deltas against a base that does flip look good for the same reason
_TRIVIAL = tuple(k for k in GATE_METRICS if k.startswith(("flip_rate", "accuracy_drop", "consistency",
                                                           "worst_", "identity_flip")))
#: accuracy under perturbation itself is not trivial (a constant scores the label prior), but its
#: delta is: a constant answer ("unknown", the majority class) keeps its accuracy on every
#: perturbed copy while a base model that reads the text loses some, so the delta looks good
TRIVIAL_METRICS = tuple(k for k in METRIC_DIRECTIONS if k in _TRIVIAL or k.removesuffix("_delta") in _TRIVIAL
                        or (k.startswith("accuracy_") and k.endswith("_delta")))
#: shares of perturbed rows (0/1 per row): exact intervals below 300 rows, the power check
PROPORTIONS = tuple(k for k in GATE_METRICS if k.startswith(("accuracy_", "flip_rate_", "consistency_"))
                    and not k.startswith("accuracy_drop"))
