"""Personal-data detectors: pure functions on text, no model, no network.

Each detector returns ``Finding``s (type, matched text, span). Numbers are validated where a
checksum exists, which keeps false positives down: card numbers must pass the Luhn check
(ISO/IEC 7812), IBANs the ISO 13616 mod-97 check; US SSNs must avoid the never-issued areas
(000, 666, 900-999), group 00 and serial 0000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPES = ("email", "phone", "credit_card", "ssn", "iban")

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")
# international (+CC ...) or grouped national numbers: 3 or more digit groups with separators,
# 9-15 digits in all (ITU-T E.164 allows at most 15)
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,8}){1,4}(?![\w-])"
    r"|(?<![\w+])\+\d{9,15}\b"
)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
#: digit groupings that belong to other identifiers: a number shaped like a card or an SSN that
#: failed its own check is not a phone number either
CARD_GROUPING = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?")
SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


@dataclass(frozen=True)
class Finding:
    type: str
    text: str
    start: int
    end: int

    def masked(self) -> str:
        return mask(self.text)


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """Luhn (mod 10) checksum of a card number; separators are ignored."""
    ds = digits(number)
    if len(ds) < 12 or len(ds) != len(number.replace(" ", "").replace("-", "")):
        return False
    total = 0
    for i, ch in enumerate(reversed(ds)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: IBAN length per country (ISO 13616 registry, the common ones); unknown countries: 15-34
IBAN_LENGTHS = {"AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
                "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
                "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
                "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26}


def iban_valid(text: str) -> bool:
    """ISO 13616: move the first 4 characters to the end, letters -> 10..35, mod 97 == 1."""
    iban = text.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def detect(text: str, types: tuple[str, ...] | list[str] = TYPES) -> list[Finding]:
    """All personal data found in ``text``, strongest evidence first: a span claimed by a card,
    IBAN or SSN is not reported again as a phone number."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(kind: str, m: re.Match[str]) -> None:
        if kind in types and free(m.start(), m.end()):
            found.append(Finding(kind, m.group(0), m.start(), m.end()))
            taken.append((m.start(), m.end()))

    for m in EMAIL.finditer(text):
        add("email", m)
    for m in IBAN.finditer(text):
        if iban_valid(m.group(0)):
            add("iban", m)
    for m in CARD.finditer(text):
        if luhn_valid(m.group(0)):
            add("credit_card", m)
    for m in SSN.finditer(text):
        add("ssn", m)
    for m in PHONE.finditer(text):
        candidate = m.group(0).strip()
        n = len(digits(candidate))
        if (9 <= n <= 15 and not DATE_LIKE.match(candidate) and not _looks_like_decimal(candidate)
                and not (n >= 13 and CARD_GROUPING.fullmatch(candidate)) and not SSN_SHAPE.fullmatch(candidate)):
            add("phone", m)
    return sorted(found, key=lambda f: f.start)


def _looks_like_decimal(text: str) -> bool:
    """``1.234.567`` or ``3.14 15`` style numbers are not phone numbers; a phone number uses
    at most one kind of separator between groups except after a country or area code."""
    return bool(re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", text))


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
