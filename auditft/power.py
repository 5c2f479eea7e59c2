"""Power check: how many items a gate on a proportion needs before it can pass a model that
meets it by a margin.

For a gate ``min: t`` on a share of ``n`` items (an audit declares such metrics with
``proportion_metrics=``), take a model whose true share is ``p* = t + margin`` and suppose it
scores exactly ``p*`` on the test items. The gate passes when the exact (Clopper-Pearson) 95%
lower bound clears ``t``:

    needed(t, margin) = min { n : Beta.ppf(0.025, p*·n, n − p*·n + 1) > t }

(``max: t`` mirrors it: ``p* = t − margin`` and the upper bound
``Beta.ppf(0.975, p*·n + 1, n − p*·n) < t``). The margin defaults to ``DEFAULT_MARGIN`` (0.10,
ten percentage points) and a gate may set its own (``margin:`` beside ``min`` / ``max``). When
``p*`` falls outside [0, 1] (``min: 0.95`` with margin 0.10) it is clamped to 1 (0): the best
possible model. A gate that even a perfect model cannot pass (``min: 1``, ``max: 0``) needs
``None`` (never). Below 300 items this is exactly the interval the gate uses for shares
(``auditft.stats``); above, the bootstrap interval is within a row or two of it.

With fewer items than needed, the check is ``insufficient`` by design (it could not tell a
model that meets the gate from one that misses it), whatever the point estimate; a whole CI on
the failing side is still ``fail``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry
    from auditft.suite import GateSpec

DEFAULT_MARGIN = 0.10
#: the search gives up above this many items (the gate is then reported as needing more)
MAX_ITEMS = 1_000_000
FORMULA = ("needed = smallest n at which a model scoring exactly t + margin (min gates; t - margin for max "
           "gates) has its exact Clopper-Pearson 95% bound beyond t; margin 0.10 unless the gate sets one")


def _clears(n: int, share: float, threshold: float, op: str) -> bool:
    from scipy.stats import beta

    k = share * n
    if op == "min":
        low = 0.0 if k <= 0 else float(beta.ppf(0.025, k, n - k + 1))
        return low > threshold
    high = 1.0 if k >= n else float(beta.ppf(0.975, k + 1, n - k))
    return high < threshold


def items_needed(op: str, threshold: float, margin: float = DEFAULT_MARGIN) -> int | None:
    """Smallest n at which a model ``margin`` better than ``threshold`` passes (see module doc);
    None when no n suffices (``min: 1`` or ``max: 0``, or beyond ``MAX_ITEMS``)."""
    share = min(threshold + margin, 1.0) if op == "min" else max(threshold - margin, 0.0)
    if (op == "min" and threshold >= 1.0) or (op == "max" and threshold <= 0.0):
        return None
    if not _clears(MAX_ITEMS, share, threshold, op):
        return None
    low, high = 1, MAX_ITEMS  # the bound tightens as n grows at a fixed share: bisect
    while low < high:
        mid = (low + high) // 2
        if _clears(mid, share, threshold, op):
            high = mid
        else:
            low = mid + 1
    return low


def requirement(gate: GateSpec) -> dict[str, Any]:
    """What the power check knows before any data: the gate and the items it needs."""
    margin: float = gate.margin if gate.margin is not None else DEFAULT_MARGIN
    return {"metric": gate.metric, "op": gate.op, "threshold": gate.threshold, "margin": margin,
            "needed": items_needed(gate.op, gate.threshold, margin)}


def plan(specs: list[Any], audits: AuditRegistry, test_rows: int) -> list[dict[str, Any]]:
    """Before training: one row per gate on a declared proportion metric, with the items it
    needs and, for audits that score the test split, whether the test split has them
    (``available`` is None for audits that score their own items, e.g. hallucination probes;
    the gate compares with the metric's ``n`` then)."""
    rows = []
    for spec in specs:
        entry = audits.get(spec.kind)
        if entry is None:
            continue
        for gate in spec.gates_with_defaults(entry.default_gates):
            if gate.metric not in entry.proportion_metrics:
                continue
            row = {"audit": spec.kind, **requirement(gate)}
            available = test_rows if spec.kind in TEST_SPLIT_AUDITS else None
            row["available"] = available
            row["powered"] = None if available is None else (row["needed"] is not None and available >= row["needed"])
            rows.append(row)
    return rows


#: built-in audits whose proportions are shares of the test split's rows
TEST_SPLIT_AUDITS = frozenset({"accuracy"})
