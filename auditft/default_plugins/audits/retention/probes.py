"""Probe files for the ``retention`` audit: the format, loading with line-precise errors, the
bundled probe set, and which probes are not held out (pure functions, no model).

Generation probes (JSON Lines, one per line)::

    {"id": "a-001", "category": "arithmetic", "prompt": "What is 15 + 2?", "reference": "17",
     "alternatives": ["seventeen"], "source": "..."}

``id``, ``category``, ``prompt`` and ``reference`` are required; ``alternatives`` (other
accepted answers) and ``source`` are optional. Any problem is a one-line ``DataError`` naming
the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import auditft
from auditft.errors import DataError

KEYS = {"id", "category", "prompt", "reference", "alternatives", "source"}


@dataclass(frozen=True)
class Probe:
    id: str
    category: str
    prompt: str
    reference: str
    alternatives: tuple[str, ...] = ()
    source: str = ""
    line: int = 0
    answers: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "answers", (self.reference, *self.alternatives))


def bundled_probes() -> Path:
    """The probe set shipped inside the package (written by suites/data/make_retention_probes.py)."""
    return Path(auditft.__file__).parent / "resources" / "retention" / "probes.jsonl"


def _rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: probe file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read probe file: {' '.join(str(exc).split())}") from None
    rows: list[tuple[int, dict[str, object]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: a probe must be a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    if not rows:
        raise DataError(f"{path}: the probe file has no probes")
    return rows


def _string(row: dict[str, object], key: str, where: str, *, required: bool) -> str:
    if key not in row or row[key] is None:
        if required:
            raise DataError(f"{where}: missing key {key!r}")
        return ""
    value = row[key]
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataError(f"{where}: {key!r} must be a non-empty string")
    return value


def load_probes(path: str | Path) -> list[Probe]:
    """Read and validate a probe file. Raises ``DataError`` ("file:line: problem") on the first
    bad row or duplicate id, or when the file is missing or has no probes."""
    path = Path(path)
    probes: list[Probe] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path):
        where = f"{path}:{number}"
        unknown = sorted(set(row) - KEYS)
        if unknown:
            raise DataError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(KEYS))})")
        alternatives = row.get("alternatives") or []
        if not isinstance(alternatives, list) or not all(isinstance(a, str) and a.strip() for a in alternatives):
            raise DataError(f"{where}: 'alternatives' must be a list of non-empty strings")
        probe = Probe(id=_string(row, "id", where, required=True),
                      category=_string(row, "category", where, required=True),
                      prompt=_string(row, "prompt", where, required=True),
                      reference=_string(row, "reference", where, required=True),
                      alternatives=tuple(alternatives), source=_string(row, "source", where, required=False),
                      line=number)
        if probe.id in seen:
            raise DataError(f"{where}: duplicate id {probe.id!r} (first on line {seen[probe.id]})")
        seen[probe.id] = number
        probes.append(probe)
    return probes


def select(probes: list[Probe], categories: list[str] | None, max_probes: int | None) -> list[Probe]:
    """The probes of ``categories`` (all when None), then at most ``max_probes`` of them taken
    round-robin over categories in file order, so a cap keeps every category (deterministic)."""
    chosen = [p for p in probes if categories is None or p.category in categories]
    if max_probes is None or len(chosen) <= max_probes:
        return chosen
    by_category: dict[str, list[Probe]] = {}
    for p in chosen:
        by_category.setdefault(p.category, []).append(p)
    out: list[Probe] = []
    depth = 0
    while len(out) < max_probes:
        out += [group[depth] for group in by_category.values() if depth < len(group)][:max_probes - len(out)]
        depth += 1
    order = {p.id: i for i, p in enumerate(chosen)}
    return sorted(out, key=lambda p: order[p.id])


def not_held_out(probes: list[Probe], training_texts: list[str]) -> list[Probe]:
    """Probes whose prompt occurs in the fine-tuning data, compared after
    normalisation (case, punctuation, articles, whitespace): the tuner saw them, so they do
    not measure retained general knowledge."""
    from auditft.textmetrics import normalize

    seen = {normalize(t) for t in training_texts}
    return [p for p in probes if normalize(p.prompt) in seen]
