"""A suite that runs several tuners: ``tuners:`` (a list) in place of ``tuner:``.

Each entry is a ``tuner:`` block (``kind``, ``options``, ``training``) with an optional
``name`` (default: its kind; two entries of one kind need distinct names). The suite expands
into one ordinary single-tuner suite per entry, named ``<suite name>-<entry name>``, so each
tuner's run is a normal run directory: its own run id, gate, sign-off and release. Everything
else (model, data and its split seed, audits, release policy) is the same for all of them, so
their test rows are the same and ``auditft compare`` pairs them.

``auditft run SUITE --tuner NAME`` picks entries by name; on a single-tuner suite, each
``--tuner KIND`` runs that kind with the suite's training settings (and the suite's options
when it is the suite's own kind).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError

from auditft.errors import SuiteError
from auditft.suite import Suite, TunerSpec, _first_error, check_plugins, parse_suite, read_suite_yaml

if TYPE_CHECKING:
    from auditft.registry import PluginSet

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
SUITE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"  # as ``Suite.name``


class TunerEntry(TunerSpec):
    """One entry of ``tuners:``: a ``tuner:`` block with a name for its run."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN)


@dataclass(frozen=True)
class Recipe:
    """One tuner of a several-tuner suite: its entry name and its own single-tuner suite."""

    name: str
    suite: Suite


def is_several(path: Path, selected: Sequence[str] = ()) -> bool:
    """Whether ``auditft run``/``validate`` on this file runs more than one suite: it lists
    ``tuners:``, or ``--tuner`` was given."""
    return bool(selected) or "tuners" in read_suite_yaml(Path(path))


def expand(path: Path, pm: PluginSet | None = None, selected: Sequence[str] = ()) -> list[Recipe]:
    """The suite file's tuners as single-tuner suites, validated (kinds and options too with
    ``pm``); errors name ``tuners[i]`` as the key path."""
    path = Path(path)
    raw = read_suite_yaml(path)
    entries = _entries(raw, path, selected)
    recipes = []
    for i, entry in entries:
        one = {k: v for k, v in raw.items() if k != "tuners"}
        one["tuner"] = {k: v for k, v in entry.items() if k != "name"}
        name = str(entry.get("name") or entry["kind"])
        where = f"tuners[{i}]" if i is not None else "tuner"
        suite = _parse(one, path, where)  # everything as the user wrote it, the suite's name too
        one["name"] = f"{suite.name}-{name}"
        if not re.match(SUITE_NAME_PATTERN, one["name"]):
            raise SuiteError(f"{path}: {where}.name: the run's suite name {one['name']!r} is longer than 64 "
                             "characters; shorten the suite's or the entry's name")
        suite = _parse(one, path, where)
        if pm is not None:
            try:
                check_plugins(suite, pm)
            except SuiteError as exc:
                raise SuiteError(str(exc).replace(f"{path}: tuner.", f"{path}: {where}.", 1)) from None
        recipes.append(Recipe(name, suite))
    return recipes


def _entries(raw: dict[str, Any], path: Path, selected: Sequence[str]) -> list[tuple[int | None, dict[str, Any]]]:
    """``(index in tuners:, entry)`` for every tuner to run, in the suite's order."""
    if "tuners" in raw and "tuner" in raw:
        raise SuiteError(f"{path}: tuners: give either tuner (one) or tuners (a list), not both")
    if "tuners" not in raw:  # a single-tuner suite with --tuner KIND ...
        base: dict[str, Any] = raw["tuner"] if isinstance(raw.get("tuner"), dict) else {}
        picked: list[tuple[int | None, dict[str, Any]]] = []
        for kind in dict.fromkeys(selected):
            entry: dict[str, Any] = {"kind": kind, "training": copy.deepcopy(base.get("training") or {})}
            if kind == base.get("kind"):
                entry["options"] = copy.deepcopy(base.get("options") or {})
            picked.append((None, entry))
        return picked
    listed = raw["tuners"]
    if not isinstance(listed, list) or not listed:
        raise SuiteError(f"{path}: tuners: must be a non-empty list of tuner blocks (kind, options, training)")
    names: dict[str, int] = {}
    found: list[tuple[int | None, dict[str, Any]]] = []
    for i, item in enumerate(listed):
        try:
            entry_model = TunerEntry.model_validate(item)
        except ValidationError as exc:
            raise SuiteError(f"{path}: {_first_error(exc, f'tuners[{i}]')}") from None
        name = entry_model.name or entry_model.kind
        if name in names:
            raise SuiteError(f"{path}: tuners[{i}].name: {name!r} is also tuners[{names[name]}]'s name; "
                             "give entries of one kind distinct names (name: lora-r16)")
        names[name] = i
        found.append((i, dict(item)))
    if selected:
        unknown = [s for s in selected if s not in names]
        if unknown:
            raise SuiteError(f"{path}: --tuner {unknown[0]!r} is not one of the suite's tuners "
                             f"(known: {', '.join(names)})")
        found = [f for f in found if str(f[1].get("name") or f[1]["kind"]) in selected]
    return found


def _parse(one: dict[str, Any], path: Path, where: str) -> Suite:
    try:
        return parse_suite(one, path)
    except SuiteError as exc:
        raise SuiteError(str(exc).replace(f"{path}: tuner.", f"{path}: {where}.", 1)) from None
