"""People's names and words on the record: normalised, compared safely, refused when unsafe.

Four-eyes and "one approval per reviewer" compare names. As raw strings, ``Alice``, ``alice ``,
``ALICE``, ``alice`` with a Cyrillic ``і``, a fullwidth ``ａ`` or a zero-width space were six
different people, so an author could approve their own run. Here:

* ``person(name)`` is the form recorded: Unicode NFKC (fullwidth and compatibility forms
  fold to plain letters), surrounding whitespace trimmed, inner runs of whitespace made one
  space. It refuses (exit 2) an empty name, one longer than ``MAX_NAME``, control, format
  (zero-width, bidi) or separator characters, symbols, a name without a letter, and a name
  whose letters mix scripts (Latin with Cyrillic or Greek, ...: the confusable-character
  trick of Unicode's UTS #39, applied as its "single script" rule).
* ``same_person(a, b)`` compares the case-folded recorded forms without whitespace and
  name punctuation, so ``Bob``, ``bob `` and ``b o b`` are one reviewer.
* ``words(text)`` checks comments and reasons: not empty, at most ``MAX_TEXT`` characters,
  no control characters but newline and tab, no bidi overrides (text that reads differently
  than it is stored). Line and paragraph separators are kept: the ledger escapes them.
"""

from __future__ import annotations

import unicodedata

from auditft.errors import AuditftError

MAX_NAME = 80
MAX_TEXT = 4000
#: punctuation a name may hold (o'brien, jean-luc, j.doe@example.org)
NAME_PUNCTUATION = set("-'._@")
#: scripts used together in one name as a matter of course
SCRIPT_FAMILIES = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "CJK": "CJK"}
#: bidi embedding, override and isolate controls
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


class IdentityError(AuditftError):
    """A name, comment or reason that cannot go on the record (exit 2)."""


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0] if name else "UNKNOWN"
    return SCRIPT_FAMILIES.get(first, first)


def person(name: str, what: str = "reviewer") -> str:
    """The recorded form of a person's name, or ``IdentityError`` naming the problem."""
    text = " ".join(unicodedata.normalize("NFKC", str(name)).split())
    if not text:
        raise IdentityError(f"{what}: a name is required")
    if len(text) > MAX_NAME:
        raise IdentityError(f"{what}: longer than {MAX_NAME} characters")
    scripts = set()
    for char in text:
        category = unicodedata.category(char)
        if category.startswith("L"):
            scripts.add(_script(char))
        elif category.startswith("M") or category == "Nd" or char == " " or char in NAME_PUNCTUATION:
            continue
        else:
            shown = f"U+{ord(char):04X}"
            raise IdentityError(f"{what}: {shown} ({unicodedata.name(char, 'unnamed')}) is not allowed in a name")
    if not scripts:
        raise IdentityError(f"{what}: a name needs at least one letter")
    if len(scripts) > 1:
        raise IdentityError(f"{what}: mixes scripts ({', '.join(sorted(scripts)).lower()}); names are compared "
                            "letter by letter, so look-alike letters from another script are refused")
    return text


#: letters of other scripts that look like Latin ones (case-folded), from Unicode's
#: confusables list (UTS #39): a name written wholly in look-alikes compares as its Latin twin
CONFUSABLE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
    "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
})


def key(name: str) -> str:
    """What names are compared by: case-folded NFKC without whitespace or the punctuation a
    name may hold, so ``Mary-Ann``, ``mary ann`` and ``MaryAnn`` are one person (a false
    "same" only stops an approval; a false "different" would let an author approve their
    own run). Tolerant: also for names recorded before these rules."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    # accents off (José and Jose are one reviewer), look-alike letters to their Latin twin
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = text.translate(CONFUSABLE)
    return "".join(c for c in text if not c.isspace() and c not in NAME_PUNCTUATION - {"@"})


def same_person(a: str, b: str) -> bool:
    return key(a) == key(b)


def words(text: str, what: str = "comment") -> str:
    """A comment or reason as recorded (trimmed), or ``IdentityError``."""
    value = str(text).strip()
    if not value:
        raise IdentityError(f"{what}: must not be empty")
    if len(value) > MAX_TEXT:
        raise IdentityError(f"{what}: {len(value):,} characters, more than the {MAX_TEXT:,} allowed")
    for char in value:
        if (unicodedata.category(char) == "Cc" and char not in "\n\t") or char in BIDI:
            raise IdentityError(f"{what}: control character U+{ord(char):04X} is not allowed")
    return value


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters shown as ``\\xNN`` escapes."""
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf") or c in "\n\t" else repr(c)[1:-1] for c in str(text))


def author_name(explicit: str | None = None) -> str:
    """Who is acting: ``--author``/``--reviewer``/``--actor`` when given, else
    ``$AUDITFT_USER``, else the operating-system user (validated by ``person`` where it counts)."""
    import getpass
    import os

    return explicit or os.environ.get("AUDITFT_USER") or getpass.getuser()
