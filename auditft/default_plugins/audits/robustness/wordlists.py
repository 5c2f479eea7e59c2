"""The word lists behind the ``robustness`` audit's ``word_edits`` and ``identity_swap`` families.

Shipped lists (editable JSON, one source line each):

* ``auditft/resources/robustness/abbreviations.json``: ``[long, short]`` pairs ("with", "w/");
* ``auditft/resources/robustness/contractions.json``: ``[expanded, contracted]`` pairs;
* identity terms are the fairness audit's counterfactual lists, reused rather than copied
  (``auditft/resources/counterfactual``): its name sets become *groups* (the first names of
  the pairs one group, the second names the other: male / female, White- / African-American-
  associated), its pronoun and ethnicity-term pairs stay pairs (two one-term groups);
* the suite's group columns: the values of a ``data.group_columns`` column that are plain words
  (``female`` / ``male``) form one more set, so a row that names its own group is swapped too.

A suite's ``word_lists`` file (JSON) replaces a shipped list key by key: ``abbreviations`` and
``contractions`` as pair lists, ``identity`` as ``[{"name", "dimension", "groups": [[terms], ...]}]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

#: ``auditft/resources/robustness`` (this file is auditft/default_plugins/audits/robustness/wordlists.py)
ROBUSTNESS_DIR = Path(__file__).parents[3] / "resources" / "robustness"
#: a group value is used as an identity term only when it is a plain word or two
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z'-]*( [A-Za-z][A-Za-z'-]*)?$")
LIST_KEYS = ("abbreviations", "contractions", "identity")
#: group values that are placeholders, not identities, and common words in running text ("no
#: other symptoms"): never used as identity terms
PLACEHOLDER_VALUES = frozenset({"other", "others", "unknown", "none", "missing", "unspecified", "not stated",
                                "not known", "na", "n/a", "prefer not", "declined", "refused", "all", "any"})


@dataclass(frozen=True)
class IdentitySet:
    """Terms in groups: a term of one group is replaced by a term of another group of the same set."""

    name: str
    dimension: str
    groups: tuple[tuple[str, ...], ...]
    source: str = ""


@dataclass(frozen=True)
class WordLists:
    abbreviations: tuple[tuple[str, str], ...]
    contractions: tuple[tuple[str, str], ...]
    identity: tuple[IdentitySet, ...]
    #: where each key came from ("shipped", "suite: <path>", "data: group columns")
    origin: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> dict[str, Any]:
        """For the evidence: sizes and origins, not the lists themselves."""
        lists: dict[str, dict[str, Any]] = {}
        for entry in self.identity:  # the pair sets of one source list are shown as one list
            name = entry.name.split(":")[0]
            row = lists.setdefault(name, {"name": name, "dimension": entry.dimension, "source": entry.source,
                                          "sets": 0, "terms": 0})
            row["sets"] += 1
            row["terms"] += sum(len(g) for g in entry.groups)
        return {"abbreviations": len(self.abbreviations), "contractions": len(self.contractions),
                "identity": list(lists.values()), "origin": dict(self.origin)}


def _pairs(rows: Sequence[Sequence[str]], what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for row in rows:
        if len(row) != 2 or not all(isinstance(t, str) and t.strip() for t in row):
            raise ValueError(f"{what}: each entry must be two non-empty strings, not {row!r}")
        out.append((row[0], row[1]))
    return tuple(out)


def _read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


@lru_cache(maxsize=1)
def counterfactual_sets() -> tuple[IdentitySet, ...]:
    """The fairness audit's swap lists as identity sets: names grouped by pair position
    (one set per source list), pronoun / ethnicity-term pairs as one set of one-term groups each."""
    from auditft.default_plugins.audits.fairness.swaps import swap_sets

    out: list[IdentitySet] = []
    for entry in swap_sets():
        pairs = entry["pairs"]
        if entry["file"] == "names.json":
            out.append(IdentitySet(f"names:{entry['name']}", entry["dimension"],
                                   (tuple(a for a, _ in pairs), tuple(b for _, b in pairs)), entry["source"]))
        else:
            out.extend(IdentitySet(f"{entry['name']}:{a}/{b}", entry["dimension"], ((a,), (b,)), entry["source"])
                       for a, b in pairs)
    return tuple(out)


def group_column_sets(values: Mapping[str, Sequence[str]]) -> tuple[IdentitySet, ...]:
    """One set per group column with at least two plain-word values (``sex``: female / male);
    placeholders such as "other" or "unknown" (``PLACEHOLDER_VALUES``) are left out."""
    out = []
    for column, seen in values.items():
        plain = sorted({v.strip() for v in seen if isinstance(v, str) and _PLAIN.match(v.strip())
                        and v.strip().lower() not in PLACEHOLDER_VALUES}, key=str.lower)
        if len(plain) >= 2:
            out.append(IdentitySet(f"group column {column}", column, tuple((v,) for v in plain),
                                   "the values of the suite's group column"))
    return tuple(out)


def _identity_from(rows: Any, what: str) -> tuple[IdentitySet, ...]:
    if not isinstance(rows, list):
        raise ValueError(f"{what}: 'identity' must be a list of sets")
    out = []
    for k, row in enumerate(rows):
        groups = row.get("groups") if isinstance(row, dict) else None
        if not isinstance(groups, list) or len(groups) < 2 or not all(
                isinstance(g, list) and g and all(isinstance(t, str) and t.strip() for t in g) for g in groups):
            raise ValueError(f"{what}: identity set {k} needs 'groups': at least two non-empty lists of terms")
        out.append(IdentitySet(str(row.get("name", f"suite set {k}")), str(row.get("dimension", "suite")),
                               tuple(tuple(g) for g in groups), str(row.get("source", what))))
    return tuple(out)


def load_word_lists(path: Path | None = None,
                    group_values: Mapping[str, Sequence[str]] | None = None) -> WordLists:
    """The shipped lists, each key replaced by the suite's ``path`` (JSON) where it has one; then
    the identity sets of the suite's group columns (``group_values``: column -> observed values)."""
    shipped_abbr = _read(ROBUSTNESS_DIR / "abbreviations.json")["abbreviations"]
    shipped_con = _read(ROBUSTNESS_DIR / "contractions.json")["contractions"]
    origin = {key: "shipped" for key in LIST_KEYS}
    suite: dict[str, Any] = {}
    if path is not None:
        suite = _read(path)
        unknown = sorted(set(suite) - set(LIST_KEYS) - {"source", "note"})
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; use {list(LIST_KEYS)}")
        origin.update({key: f"suite: {path}" for key in LIST_KEYS if key in suite})
    abbreviations = _pairs(suite.get("abbreviations", shipped_abbr), "abbreviations")
    contractions = _pairs(suite.get("contractions", shipped_con), "contractions")
    identity = _identity_from(suite["identity"], str(path)) if "identity" in suite else counterfactual_sets()
    columns = group_column_sets(group_values or {})
    if columns:
        origin["group_columns"] = "data: " + ", ".join(s.dimension for s in columns)
    return WordLists(abbreviations, contractions, identity + columns, origin)
