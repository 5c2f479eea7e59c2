"""Counterfactual term swaps for the generation half of the ``fairness`` audit: the swap
lists shipped in ``auditft/resources/counterfactual`` and a whole-word, case-preserving
swapper. Pure text functions, unit-tested directly."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

#: ``auditft/resources/counterfactual`` (this file is auditft/default_plugins/audits/fairness/swaps.py)
COUNTERFACTUAL_DIR = Path(__file__).parents[3] / "resources" / "counterfactual"
SWAP_FILES = ("pronouns.json", "names.json", "ethnicity.json")


@lru_cache(maxsize=1)
def swap_sets() -> tuple[dict[str, Any], ...]:
    """Every swap set shipped in ``auditft/resources/counterfactual`` ({"name", "dimension",
    "source", "pairs"}), in file order."""
    sets: list[dict[str, Any]] = []
    for name in SWAP_FILES:
        data = json.loads((COUNTERFACTUAL_DIR / name).read_text(encoding="utf-8"))
        for entry in data["sets"]:
            sets.append({"file": name, "name": entry["name"], "dimension": entry["dimension"],
                         "source": entry.get("source") or data["source"],
                         "pairs": [tuple(pair) for pair in entry["pairs"]]})
    return tuple(sets)


def swaps_by_dimension() -> dict[str, list[tuple[str, str]]]:
    """Pairs of every swap set, merged per dimension ("gender", "ethnicity"), so one
    counterfactual prompt swaps names and pronouns together ("Michael ... he" ->
    "Jessica ... she")."""
    out: dict[str, list[tuple[str, str]]] = {}
    for entry in swap_sets():
        out.setdefault(entry["dimension"], []).extend(entry["pairs"])
    return out


def _match_case(original: str, replacement: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement.lower()


class Swapper:
    """Whole-word, case-insensitive, case-preserving, simultaneous swap of paired terms.

    Each pair maps both ways; when a term appears in two pairs (English "her" is both "him"
    and "his"), the first pair listed wins. Longer terms are tried first, so "African
    American" is one term, not two."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.mapping: dict[str, str] = {}
        for a, b in pairs:
            self.mapping.setdefault(a.lower(), b)
            self.mapping.setdefault(b.lower(), a)
        terms = sorted(self.mapping, key=lambda t: (-len(t), t))
        body = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in terms)
        self.pattern = re.compile(rf"(?<![\w'-])(?:{body})(?![\w-])", re.IGNORECASE) if terms else None

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        return _match_case(found, self.mapping[" ".join(found.lower().split())])

    def __call__(self, text: str) -> str:
        return text if self.pattern is None else self.pattern.sub(self._replace, text)

    def matches(self, text: str) -> bool:
        return self.pattern is not None and self.pattern.search(text) is not None
