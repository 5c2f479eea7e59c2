"""The ``robustness`` audit's perturbation families: pure, seeded text functions.

Each family is ``(text, rng) -> text | None``: ``rng`` is a ``random.Random`` the audit seeds
per row from the suite's seed, the family and the row (``row_rng``), so a run is reproducible and
a row gets the same perturbation whatever else is in the test set. ``None`` means the family does
not apply to the row (no word to misspell, no listed term); such rows are left out of that
family's figures. A family never returns its input unchanged.

* ``char_noise``: typos a person makes. ``rate`` of the words (at least one) get one edit each:
  two adjacent letters swapped, an inner letter deleted, a letter doubled, the word's case
  flipped, the space before it doubled or dropped, or a punctuation mark added after it (or the
  one there removed).
* ``word_edits``: rewrites that keep the meaning: abbreviations both ways ("with" <-> "w/"),
  contractions both ways ("do not" <-> "don't"), number formats (3 <-> "three" for 0-99,
  1000 <-> "1,000"; years 1900-2099, decimals, times and codes are left alone). ``rate`` of the
  edit sites found (at least one) are rewritten.
* ``identity_swap``: every listed identity term (names, pronouns, ethnicity terms, the values of
  the suite's group columns; ``wordlists``) is replaced by a term of another group of its set, whole
  words, case kept, the same term the same way throughout the row. Meaning is kept except for who
  the row is about: a prediction that changes is a prediction that depends on identity.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from functools import lru_cache, partial

from auditft.default_plugins.audits.robustness.wordlists import IdentitySet, WordLists

Perturbation = Callable[[str, random.Random], "str | None"]
FAMILIES = ("char_noise", "word_edits", "identity_swap")

_WORD = re.compile(r"[A-Za-z]+")
_PUNCTUATION = ",.;!?"


def row_rng(seed: int, family: str, key: str) -> random.Random:
    """The generator for one row and family (a string seed: stable across Python runs)."""
    return random.Random(f"robustness/{seed}/{family}/{key}")


def _recase(found: str, listed: str, replacement: str, *, lower: bool) -> str:
    """``replacement`` in the case of ``found``: as listed when ``found`` is written as listed,
    upper when it is upper, capitalised when capitalised, else lower (``lower``) or as listed."""
    if found == listed:
        return replacement
    if len(found) > 1 and found.isupper():
        return replacement.upper()
    if found[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement.lower() if lower else replacement


def _key(term: str) -> str:
    return " ".join(term.replace("\u2019", "'").lower().split())


def _pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """Whole-term, case-insensitive alternation, longest first; spaces match any whitespace and
    an apostrophe either apostrophe."""
    ordered = sorted({_key(t) for t in terms}, key=lambda t: (-len(t), t))
    if not ordered:
        return None
    body = "|".join(re.escape(t).replace(r"\ ", r"\s+").replace("'", "['\u2019]") for t in ordered)
    return re.compile(rf"(?<![\w'\u2019-])(?:{body})(?![\w'\u2019-])", re.IGNORECASE)


# -- char_noise --------------------------------------------------------------------------------------


def _typo(word: str, rng: random.Random) -> str:
    """One letter-level edit inside ``word`` (never a no-op)."""
    ops = ["duplicate", "case"]
    if len(word) >= 3:
        ops += ["swap", "delete"]
    op = rng.choice(ops)
    if op == "swap":
        spots = [i for i in range(1, len(word) - 1) if word[i] != word[i + 1]]
        if spots:
            i = rng.choice(spots)
            return word[:i] + word[i + 1] + word[i] + word[i + 2:]
        op = "duplicate"
    if op == "delete":
        i = rng.randrange(1, len(word) - 1)
        return word[:i] + word[i + 1:]
    if op == "duplicate":
        i = rng.randrange(len(word))
        return word[:i + 1] + word[i] + word[i + 1:]
    return word.lower() if word.isupper() and len(word) > 1 else word.upper()


def char_noise(text: str, rng: random.Random, *, rate: float = 0.1) -> str | None:
    """Typos in ``rate`` of the words (at least one): a letter-level edit (adjacent swap, inner
    deletion, duplication, case flip), whitespace (the space before the word doubled or dropped)
    or punctuation (a mark added after the word, or the one there removed). None without a word."""
    words = list(_WORD.finditer(text))
    if not words:
        return None
    chosen = sorted(rng.sample(range(len(words)), max(1, round(rate * len(words)))), reverse=True)
    out = text
    for k in chosen:  # right to left, so earlier offsets stay valid
        m = words[k]
        start, end = m.span()
        kind = rng.choices(("letters", "whitespace", "punctuation"), weights=(4, 1, 1))[0]
        if kind == "whitespace" and start > 0 and out[start - 1] == " ":
            doubled = rng.random() < 0.5  # else the space goes and two words run together
            out = out[:start - 1] + ("  " if doubled else "") + out[start:]
            continue
        if kind == "punctuation":
            if end < len(out) and out[end] in _PUNCTUATION:
                out = out[:end] + out[end + 1:]
            else:
                out = out[:end] + rng.choice(_PUNCTUATION) + out[end:]
            continue
        out = out[:start] + _typo(m.group(0), rng) + out[end:]
    return out if out != text else None


# -- word_edits --------------------------------------------------------------------------------------

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER = re.compile(r"(?<![\w.,:/#-])\d{1,3}(?:,\d{3})+(?![\w,:/%-])(?!\.\d)|(?<![\w.,:/#-])\d+(?![\w,:/%-])(?!\.\d)")
# "one" alone is left out: "no one", "the one" are not numbers
_NUMBER_WORD = re.compile(
    r"(?<![\w-])(?:(?:" + "|".join(_TENS[2:]) + r")(?:[- ](?:" + "|".join(_UNITS[1:10]) + r"))?|"
    + "|".join(u for u in _UNITS if u != "one") + r")(?![\w-])", re.IGNORECASE)


def number_words(n: int) -> str:
    """0-99 in words: 3 -> "three", 42 -> "forty-two"."""
    if not 0 <= n <= 99:
        raise ValueError(f"{n} is outside 0-99")
    if n < 20:
        return _UNITS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + (f"-{_UNITS[units]}" if units else "")


def words_number(text: str) -> int:
    """The inverse of ``number_words`` ("forty two" and "forty-two" -> 42)."""
    parts = re.split(r"[- ]", text.lower())
    value = _TENS.index(parts[0]) * 10 if parts[0] in _TENS[2:] else _UNITS.index(parts[0])
    return value + (_UNITS.index(parts[1]) if len(parts) > 1 else 0)


def reformat_number(token: str) -> str | None:
    """Another format of the same integer: 0-99 in words, thousands separators added (1000 ->
    "1,000") or removed; None for what may not be a quantity (a year, a leading zero)."""
    if "," in token:
        return token.replace(",", "")
    if len(token) > 1 and token.startswith("0"):
        return None
    value = int(token)
    if value <= 99:
        return number_words(value)
    if value >= 1000 and not (len(token) == 4 and 1900 <= value <= 2099):
        return f"{value:,}"
    return None


@lru_cache(maxsize=8)
def _edit_table(pairs: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str] | None, dict[str, tuple[str, str]]]:
    """Both directions of ``pairs``: pattern and key -> (listed form, other form); first wins."""
    table: dict[str, tuple[str, str]] = {}
    for a, b in pairs:
        table.setdefault(_key(a), (a, b))
        table.setdefault(_key(b), (b, a))
    return _pattern(list(table)), table


def edit_sites(text: str, lists: WordLists) -> list[tuple[int, int, str]]:
    """Every meaning-preserving rewrite ``word_edits`` could make: (start, end, replacement),
    non-overlapping (the earlier, then the longer, wins)."""
    sites: list[tuple[int, int, str]] = []
    for pairs in (lists.contractions, lists.abbreviations):
        pattern, table = _edit_table(pairs)
        for m in pattern.finditer(text) if pattern else ():
            listed, other = table[_key(m.group(0))]
            sites.append((m.start(), m.end(), _recase(m.group(0), listed, other, lower=False)))
    for m in _NUMBER.finditer(text):
        new = reformat_number(m.group(0))
        if new is not None:
            sites.append((m.start(), m.end(), new))
    for m in _NUMBER_WORD.finditer(text):
        sites.append((m.start(), m.end(), str(words_number(m.group(0)))))
    kept: list[tuple[int, int, str]] = []
    for site in sorted(sites, key=lambda s: (s[0], -(s[1] - s[0]))):
        if not kept or site[0] >= kept[-1][1]:
            kept.append(site)
    return kept


def word_edits(text: str, rng: random.Random, *, lists: WordLists, rate: float = 0.1) -> str | None:
    """Rewrite ``rate`` of the edit sites (at least one; ``edit_sites``); None when there is none."""
    sites = edit_sites(text, lists)
    if not sites:
        return None
    chosen = sorted(rng.sample(sites, max(1, round(rate * len(sites)))), reverse=True)
    out = text
    for start, end, new in chosen:
        out = out[:start] + new + out[end:]
    return out if out != text else None


# -- identity_swap -----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _identity_table(sets: tuple[IdentitySet, ...]) -> tuple[re.Pattern[str] | None,
                                                            dict[str, tuple[int, int, str]]]:
    """Pattern over every term and key -> (set index, group index, listed form); first wins."""
    table: dict[str, tuple[int, int, str]] = {}
    for s, entry in enumerate(sets):
        for g, group in enumerate(entry.groups):
            for term in group:
                table.setdefault(_key(term), (s, g, term))
    return _pattern(list(table)), table


def identity_replacements(text: str, rng: random.Random, *, lists: WordLists) -> tuple[str, dict[str, str]] | None:
    """The swapped text and what was swapped (replacement -> original, lower case, to swap an
    answer back); None when the row has no listed term."""
    pattern, table = _identity_table(lists.identity)
    if pattern is None or not pattern.search(text):
        return None
    chosen: dict[str, str] = {}  # original key -> replacement as listed

    def replace(m: re.Match[str]) -> str:
        found = m.group(0)
        key = _key(found)
        s, g, listed = table[key]
        if key not in chosen:
            groups = lists.identity[s].groups
            other = groups[rng.choice([k for k in range(len(groups)) if k != g])]
            chosen[key] = rng.choice(other)
        return _recase(found, listed, chosen[key], lower=True)

    out = pattern.sub(replace, text)
    if out == text:
        return None
    return out, {_key(new): key for key, new in chosen.items()}


def identity_swap(text: str, rng: random.Random, *, lists: WordLists) -> str | None:
    """Every listed identity term swapped for a term of another group of its set (case kept,
    the same term the same way throughout); None when the row has none."""
    swapped = identity_replacements(text, rng, lists=lists)
    return None if swapped is None else swapped[0]


def swap_back(answer: str, mapping: dict[str, str]) -> str:
    """``answer`` with the swapped-in terms put back, so repeating the new name is no change."""
    pattern = _pattern(list(mapping))
    if pattern is None:
        return answer
    return pattern.sub(lambda m: mapping[_key(m.group(0))], answer)


def family(name: str, *, lists: WordLists, rate: float) -> Perturbation:
    """The perturbation function of family ``name`` with its lists and rate bound."""
    if name == "char_noise":
        return partial(char_noise, rate=rate)
    if name == "word_edits":
        return partial(word_edits, lists=lists, rate=rate)
    if name == "identity_swap":
        return partial(identity_swap, lists=lists)
    raise ValueError(f"unknown perturbation family {name!r}; use one of {list(FAMILIES)}")
