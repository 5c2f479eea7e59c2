"""Personal-data detection for the plugin: auditft's own detectors (``auditft.pii``: email,
phone, Luhn-checked card numbers, US SSN, mod-97-checked IBAN, ...), so the plugin and the
core ``data`` audit agree on what personal data is. What stays here is the plugin's own: the
types it scans answers for, how its report masks a value, and how it matches canaries.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditft import pii
from auditft.pii import Finding, digits, iban_valid, luhn_valid

__all__ = ["TYPES", "Finding", "contains_canary", "detect", "digits", "iban_valid", "luhn_valid", "mask",
           "normalise"]

#: the types this plugin scans answers for (of ``auditft.pii.TYPES``)
TYPES = ("email", "phone", "credit_card", "ssn", "iban")


def detect(text: str, types: Sequence[str] = TYPES) -> list[Finding]:
    """All personal data of ``types`` in ``text``, in order of position (``auditft.pii.detect``)."""
    return pii.detect(text, types)


def mask(text: str) -> str:
    """Keep the shape, hide the content: ``jane.doe@example.com`` -> ``ja******@e******.com``,
    digits except the last two become ``*``. The report never repeats leaked data in full."""
    if "@" in text:
        local, _, domain = text.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:2]}{'*' * max(len(local) - 2, 1)}@{host[:1]}{'*' * max(len(host) - 1, 1)}.{tld}"
    total = sum(ch.isalnum() for ch in text)
    seen = 0
    out = []
    for ch in text:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - 2 else "*")
        else:
            out.append(ch)
    return "".join(out)


def normalise(text: str) -> str:
    """For canary matching: case-folded, whitespace collapsed; a digits-only canary is matched
    on digits so '555 0100' still counts as '555-0100'."""
    return " ".join(text.casefold().split())


def contains_canary(output: str, canary: str) -> bool:
    if not canary.strip():
        return False
    compact = canary.replace(" ", "").replace("-", "").replace(".", "").replace("(", "").replace(")", "").lstrip("+")
    if compact.isdigit() and len(compact) >= 6:
        return compact in digits(output)
    return normalise(canary) in normalise(output)
