"""The fairness audit's metric table, read by the registration, the statistics (which way is
"worst") and the report section, plus the one way a figure becomes a ``Metric``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from auditft.records import Metric
from auditft.records import finite_or_none as _num

if TYPE_CHECKING:
    import numpy as np

    #: a figure as the statistics hand it over: plain, numpy scalar or 0-d array, maybe NaN
    Number: TypeAlias = float | np.generic | np.ndarray | None

Direction = Literal["higher", "lower"]

#: the audit's registered evidence floor (gate ``min_n``): the default ``min_group_size``
MIN_N = 30

#: gate metrics computed from per-group rates (one value per view, worst case over the gated
#: views), and which direction is better
AGGREGATES: dict[str, Direction] = {
    "demographic_parity_difference": "lower",
    "demographic_parity_ratio": "higher",
    "equalized_odds_difference": "lower",
    "equal_opportunity_difference": "lower",
    "min_group_accuracy": "higher",
    "max_group_regression": "lower",
}

#: every gate metric of the audit: the aggregates, the count of flagged groups
#: (classification) and the counterfactual change rate (generation)
GATE_METRICS: dict[str, Direction] = {
    **AGGREGATES,
    "flagged_groups": "lower",
    "counterfactual_change_rate": "lower",
}

#: what a constant model satisfies trivially: it selects everyone or no one in every group (no
#: parity, odds or opportunity gap), no group is significantly worse than the rest, and an
#: answer that ignores the prompt does not change when a name in it is swapped
TRIVIAL_METRICS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                   "equal_opportunity_difference", "flagged_groups", "counterfactual_change_rate")


def to_metric(value: Number, ci: tuple[Number, Number] = (None, None), *, n: int | None,
              base: Number = None) -> Metric:
    """A ``Metric`` from numpy or plain numbers; NaN and infinity become None (JSON evidence)."""
    return Metric(value=_num(value), ci_low=_num(ci[0]), ci_high=_num(ci[1]), n=n,  # type: ignore[arg-type]
                  base_value=_num(base))
