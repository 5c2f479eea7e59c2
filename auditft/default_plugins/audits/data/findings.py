"""What the ``data`` audit's checks add up to, and the helpers every check shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.data.options import PII_TYPES, SHOWN_CHARS
from auditft.pii import mask_text
from auditft.records import Metric

if TYPE_CHECKING:
    from auditft.data import Example


class Findings:
    """Metrics, evidence, notes and row lists, filled in by one check after another."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.evidence: dict[str, Any] = {"seconds": {}}
        self.notes: list[str] = []
        self.rows: dict[str, list[int]] = {}
        #: train-file row -> suggested label, for the exports only (not in the evidence)
        self.suggestions: dict[int, dict[str, Any]] = {}


def rate(count: int, n: int) -> Metric:
    """A share of rows. No CI: these are counts over the whole dataset, not a sample."""
    return Metric(value=count / n if n else 0.0, n=n)


def show(text: str) -> str:
    """A row's text for the evidence: personal data masked (every type, whatever ``pii_types``
    counts), then shortened."""
    masked = mask_text(text, PII_TYPES)
    return masked if len(masked) <= SHOWN_CHARS else masked[:SHOWN_CHARS] + "…"


def row_text(ex: Example) -> str:
    """What a row says: the text, or prompt and response for generation."""
    return ex.text if ex.response is None else f"{ex.text}\n{ex.response}"
