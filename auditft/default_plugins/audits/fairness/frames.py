"""fairlearn's side of the classification audit: a view's ``MetricFrame`` (the adapter's
gated per-group figures and point aggregates) and, with ``per_group_ci: fairlearn``, its
bootstrap CIs. fairlearn and pandas are imported here, inside the functions, only when the
audit runs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from auditft.default_plugins.audits.fairness.stats import View

    #: a MetricFrame metric: (y_true, y_pred) of one group -> figure
    GroupMetric: TypeAlias = Callable[[np.ndarray, np.ndarray], float]


def _metric_functions(pos: int) -> dict[str, GroupMetric]:
    """MetricFrame callables on integer labels. Rates are about ``pos`` (one-vs-rest) and an
    undefined rate is NaN (fairlearn's own ``true_positive_rate`` would return 0.0). Plain numpy,
    because the frame calls them once per group (and per resample with ``n_boot``)."""
    import numpy as np

    def count(y_true: np.ndarray, y_pred: np.ndarray) -> int:
        return len(y_true)

    def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")

    def selection_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.mean(np.asarray(y_pred) == pos)) if len(y_pred) else float("nan")

    def tpr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        t, p = np.asarray(y_true) == pos, np.asarray(y_pred) == pos
        return float(p[t].mean()) if t.any() else float("nan")

    def fpr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        t, p = np.asarray(y_true) == pos, np.asarray(y_pred) == pos
        return float(p[~t].mean()) if (~t).any() else float("nan")

    return {"count": count, "accuracy": accuracy, "selection_rate": selection_rate, "tpr": tpr, "fpr": fpr}


class GroupFrame:
    """A view's fairlearn ``MetricFrame`` plus its by-group table indexed by plain group label
    (``frame.loc[label]["accuracy"]``)."""

    def __init__(self, view: View, y: np.ndarray, pred: np.ndarray, pos: int) -> None:
        import numpy as np
        from fairlearn.metrics import MetricFrame

        features = np.asarray(view.labels, dtype=object)[view.codes]
        self.frame = MetricFrame(metrics=_metric_functions(pos), y_true=y, y_pred=pred, sensitive_features=features)
        table = self.frame.by_group
        table.index = [str(i) for i in table.index]
        self.loc = table.loc

    def aggregates(self, max_group_regression: float) -> dict[str, float]:
        """Point aggregates of the view from fairlearn's ``difference()`` / ``ratio()`` /
        ``group_min()`` (between groups); the regression needs the base model, so it comes in
        from the per-group rates."""
        frame = self.frame
        difference = frame.difference(method="between_groups")
        ratio = frame.ratio(method="between_groups")
        dp_ratio = float(ratio["selection_rate"])
        if not math.isfinite(dp_ratio) and float(frame.group_max()["selection_rate"]) == 0:
            dp_ratio = 1.0  # every group selects nobody: parity
        tpr, fpr = float(difference["tpr"]), float(difference["fpr"])
        finite = [x for x in (tpr, fpr) if math.isfinite(x)]
        return {
            "demographic_parity_difference": float(difference["selection_rate"]),
            "demographic_parity_ratio": dp_ratio,
            "equalized_odds_difference": max(finite) if finite else float("nan"),
            "equal_opportunity_difference": tpr,
            "min_group_accuracy": float(frame.group_min()["accuracy"]),
            "max_group_regression": max_group_regression,
        }


def fairlearn_cis(view: View, y: np.ndarray, pred: np.ndarray, pos: int, n_boot: int,
                  seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-group 95% CIs from fairlearn's own bootstrap (``MetricFrame(n_boot=...)``)."""
    import numpy as np
    from fairlearn.metrics import MetricFrame

    features = np.asarray(view.labels, dtype=object)[view.codes]
    functions = {k: v for k, v in _metric_functions(pos).items() if k != "count"}
    frame = MetricFrame(metrics=functions, y_true=y, y_pred=pred, sensitive_features=features,
                        n_boot=n_boot, ci_quantiles=[0.025, 0.975], random_state=seed)
    low, high = frame.by_group_ci
    low.index = [str(i) for i in low.index]
    high.index = [str(i) for i in high.index]
    return {name: (low[name].reindex(view.labels).to_numpy(dtype=float),
                   high[name].reindex(view.labels).to_numpy(dtype=float)) for name in functions}
