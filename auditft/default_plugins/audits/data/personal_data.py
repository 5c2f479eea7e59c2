"""Personal data in the training text: rows with emails, phone numbers, Luhn-valid payment
cards, US SSNs or UK National Insurance numbers (the detectors are ``auditft.pii``), only
ever shown masked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditft import pii
from auditft.default_plugins.audits.data.findings import Findings, rate, row_text, show
from auditft.default_plugins.audits.data.options import PII_TYPES

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.data.options import DataOptions
    from auditft.jobs import AuditJob


def detect_pii(text: str, types: Sequence[str] = PII_TYPES) -> list[pii.Finding]:
    """``auditft.pii.detect`` over the types this audit knows."""
    return pii.detect(text, types)


def mask_pii(text: str, types: Sequence[str] = PII_TYPES) -> str:
    """``text`` with every finding replaced by its masked form (for exports and reports)."""
    return pii.mask_text(text, types)


@dataclass
class PiiScan:
    counts: dict[str, int]  # findings per type
    rows_by_type: dict[str, list[int]]  # positions with at least one finding of the type
    rows: list[int]  # positions with any finding
    examples: list[dict[str, Any]]  # masked only


def scan_pii(texts: Sequence[str], types: Sequence[str] = PII_TYPES, *, max_examples: int = 10) -> PiiScan:
    counts: Counter[str] = Counter()
    by_type: dict[str, list[int]] = {t: [] for t in types}
    rows: list[int] = []
    examples: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        findings = detect_pii(text, types)
        if not findings:
            continue
        rows.append(i)
        for kind in dict.fromkeys(f.type for f in findings):
            by_type[kind].append(i)
        counts.update(f.type for f in findings)
        if len(examples) < max_examples:
            examples.append({"position": i, "types": sorted({f.type for f in findings}),
                             "masked": [f.masked for f in findings]})
    return PiiScan({t: counts.get(t, 0) for t in types}, by_type, rows, examples)


def check_pii(job: AuditJob, rows: list[Example], out: Findings, options: DataOptions) -> None:
    """The audit step: ``pii_row_rate``, the rows with personal data and masked examples."""
    scan = scan_pii([row_text(ex) for ex in rows], options.pii_types, max_examples=options.max_examples)
    out.metrics["pii_row_rate"] = rate(len(scan.rows), len(rows))
    out.rows["pii_rows"] = sorted(rows[i].row for i in scan.rows)
    examples = [{"row": rows[e["position"]].row, "types": e["types"], "masked": e["masked"],
                 "text": show(row_text(rows[e["position"]]))}  # every type masked, whatever pii_types
                for e in scan.examples]
    out.evidence["pii"] = {"types": list(options.pii_types), "counts": scan.counts,
                           "rows_by_type": {t: len(v) for t, v in scan.rows_by_type.items()},
                           "rows": len(scan.rows), "examples": examples}
    out.notes.append(
        "Personal data: emails; phone numbers (international +CC, North American and trunk-prefix national "
        "formats, 7-15 digits); payment card numbers only when the Luhn checksum holds; US SSNs outside the "
        "never-issued ranges (area 000, 666, 900-999, group 00, serial 0000); UK National Insurance numbers "
        "(upper case, valid prefixes). Only masked values are stored or shown. Names and addresses are not "
        "detected.")
