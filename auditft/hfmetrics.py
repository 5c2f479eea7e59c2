"""Hugging Face ``evaluate`` metrics for generation audits (ROUGE, BLEU, ... by name or path).

``evaluate.load(name)`` fetches the metric's code from the hub at run time; here the hub may
be unreachable, where it would hang or fail deep inside the library. So a metric named by
path (a folder or ``.py`` file of an ``evaluate`` metric) is loaded locally, and a metric
named by hub name is loaded only after a short reachability check, otherwise a one-line error
says to give a local path.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import AuditError

if TYPE_CHECKING:
    from auditft.registry import Direction

HUB = ("huggingface.co", 443)

#: keys of common metrics that suites may gate on (evaluate metrics report these names)
KNOWN_KEYS: dict[str, Direction] = {"rouge1": "higher", "rouge2": "higher", "rougeL": "higher", "rougeLsum": "higher",
              "bleu": "higher", "sacrebleu": "higher", "chrf": "higher", "meteor": "higher",
              "bertscore_f1": "higher", "ter": "lower"}


def is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or spec.startswith(".")


def local_path(spec: str, suite_dir: Path) -> Path:
    path = Path(spec).expanduser()
    return path if path.is_absolute() else suite_dir / path


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_EVALUATE_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(HUB, timeout=timeout):
            return True
    except OSError:
        return False


def load_metric(spec: str, suite_dir: Path) -> Any:
    try:
        import evaluate
    except ImportError:
        raise AuditError(f"evaluate metric {spec!r}: the 'evaluate' package is not installed") from None
    if is_path(spec):
        path = local_path(spec, suite_dir)
        if not path.exists():
            raise AuditError(f"evaluate metric {spec!r}: {path} does not exist")
        target = str(path)
    else:
        if not hub_reachable():
            raise AuditError(f"evaluate metric {spec!r}: the Hugging Face hub is not reachable (offline); "
                             "give the path of a local copy of the metric instead")
        target = spec
    try:
        return evaluate.load(target)
    except Exception as exc:  # the library raises many kinds; one line for the report
        raise AuditError(f"evaluate metric {spec!r}: cannot load: {' '.join(str(exc).split())[:200]}") from None


def compute(metric: Any, predictions: list[str], references: list[str]) -> dict[str, float]:
    """The metric's numeric scalar results (lists such as BLEU's precisions are dropped)."""
    out = metric.compute(predictions=predictions, references=references) or {}
    return {str(k): float(v) for k, v in out.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
