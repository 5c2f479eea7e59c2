"""Personal data in text: one set of detectors for every part of auditft (standard library only).

The ``data`` audit scans training text with them and the ``auditft-pii`` plugin scans model
answers with them, so both agree on what counts as personal data:

* ``email``: ``local@host.tld``;
* ``phone``: international (``+CC ...``), North American (``(202) 555-0143``, ``202-555-0143``)
  and trunk-prefix national formats (``020 7946 0958``, ``01 23 45 67 89``), 7-15 digits
  (ITU-T E.164 allows at most 15);
* ``credit_card``: a payment card number. **Definition**: 12 to 19 digits (the ISO/IEC 7812
  lengths used in practice: Maestro from 12, most cards 16, up to 19), whose first digit is a
  payment-card major industry identifier (2-6), optionally grouped by spaces or dashes (one
  kind of separator per number), never directly after a ``+`` (a phone number's country code),
  and passing the Luhn (mod 10) check;
* ``ssn``: a US Social Security number ``123-45-6789`` (or with spaces) outside the ranges never
  issued (area 000, 666, 900-999; group 00; serial 0000);
* ``nino``: a UK National Insurance number (upper case, allocated prefixes, suffix A-D);
* ``iban``: an IBAN passing the ISO 13616 mod-97 check and its country's length.

Stronger evidence claims a span first: a checked card number, IBAN, SSN or NINO is not reported
again as a phone number, nor is a card- or SSN-shaped number that failed its own check.
Callers choose the types they report; masking keeps a value's shape and hides its content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

TYPES = ("email", "phone", "credit_card", "ssn", "nino", "iban")

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")
#: a card-number candidate (see the definition above): first digit 2-6, then 11-18 more digits
CARD = re.compile(r"(?<![\d+-])[2-6]\d{3}(?:[ -]?\d){8,15}(?![\d-])")
SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
# UK NINO (upper case): two prefix letters (HMRC excludes D F I Q U V, and O second), 6 digits, suffix A-D
NINO = re.compile(r"\b([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b")
NINO_UNUSED_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
PHONE = re.compile(
    r"(?<![\w+/.-])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{2,5}){1,4}"  # international: +44 20 7946 0958
    r"|\(\d{3}\)\s?\d{3}[\s.-]\d{4}"  # North American: (202) 555-0143
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 202-555-0143, 202.555.0143
    r"|0\d(?:[\s.]\d{2}){4}"  # French style: 01 23 45 67 89
    r"|0\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}"  # trunk prefix 0: 020 7946 0958, 07700 900123
    r")(?![\w/-])"
)

#: IBAN length per country (ISO 13616 registry, the common ones); unknown countries: 15-34
IBAN_LENGTHS = {"AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
                "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
                "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
                "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26}


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its type, the matched text and its span in the input."""

    type: str
    text: str
    start: int
    end: int

    @property
    def masked(self) -> str:
        return mask_value(self.type, self.text)


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) checksum of a payment card number of 12-19 digits (ISO/IEC 7812);
    spaces and dashes between digits are ignored, any other character fails."""
    ds = number.replace(" ", "").replace("-", "")
    if not ds.isdigit() or not 12 <= len(ds) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(ds)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def card_number(candidate: str) -> bool:
    """A ``CARD`` match is a card number: one kind of separator at most, and the Luhn check."""
    return len({ch for ch in candidate if not ch.isdigit()}) <= 1 and luhn_valid(candidate)


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """US SSN ranges never issued: area 000, 666 and 900-999, group 00, serial 0000."""
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


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


def detect(text: str, types: Sequence[str] = TYPES) -> list[Finding]:
    """Personal data of ``types`` in ``text``, in order of position. Stronger evidence claims a
    span first, so one span is reported once, as its most specific type."""
    found: list[Finding] = []

    def add(kind: str, m: re.Match[str]) -> None:
        if kind in types and all(m.end() <= f.start or m.start() >= f.end for f in found):
            found.append(Finding(kind, m.group(0), m.start(), m.end()))

    for m in EMAIL.finditer(text):
        add("email", m)
    for m in IBAN.finditer(text):
        if iban_valid(m.group(0)):
            add("iban", m)
    for m in CARD.finditer(text):
        if card_number(m.group(0)):
            add("credit_card", m)
    for m in SSN.finditer(text):
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            add("ssn", m)
    for m in NINO.finditer(text):
        if (m.group(1) + m.group(2)).upper() not in NINO_UNUSED_PREFIXES:
            add("nino", m)
    # a card- or SSN-shaped number that failed its own check is not a phone number either
    shaped = [m.span() for pattern in (CARD, SSN) for m in pattern.finditer(text)]
    for m in PHONE.finditer(text):
        n = len(digits(m.group(0)))
        if 7 <= n <= 15 and not any(s <= m.start() < e or s < m.end() <= e for s, e in shaped):
            add("phone", m)
    return sorted(found, key=lambda f: f.start)


def mask_value(kind: str, value: str) -> str:
    """Keep the shape, hide the content: ``jane@example.com`` -> ``j***@e***.com``; a card keeps
    its last 4 digits (``**** **** **** 1234``), other values their last 2 characters."""
    if kind == "email":
        local, _, domain = value.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}"
    keep = 4 if kind == "credit_card" else 2
    total = sum(ch.isalnum() for ch in value)
    out, seen = [], 0
    for ch in value:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_text(text: str, types: Sequence[str] = TYPES) -> str:
    """``text`` with every finding of ``types`` replaced by its masked form."""
    out, last = [], 0
    for f in detect(text, types):
        out += [text[last:f.start], f.masked]
        last = f.end
    return "".join(out) + text[last:]
