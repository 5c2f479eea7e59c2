"""Probe files for the ``hallucination`` audit: the format, loading with line-precise errors,
the bundled probe set and the self-consistency subset (pure functions, no model).

A probe file is JSON Lines, one probe per line::

    {"id": "ans-001", "type": "answerable", "prompt": "What is the capital of Kenya?",
     "reference": "Nairobi", "source": "countryinfo 1.0.1 ..."}
    {"id": "una-001", "type": "unanswerable", "prompt": "What is the capital of Zarnovia?", "source": "..."}
    {"id": "gro-001", "type": "grounded", "prompt": "Answer only from this passage. Passage: ... Question: ...",
     "context": "...", "reference": "...", "source": "..."}

``reference`` is required for ``answerable`` (optional for ``grounded``, shown in the report
only), ``context`` is required for ``grounded``. Any problem is a ``DataError`` naming the
file and line.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import auditft
from auditft.errors import DataError

TYPES = ("answerable", "unanswerable", "grounded")
REQUIRED = {"answerable": ("reference",), "unanswerable": (), "grounded": ("context",)}
KEYS = {"id", "type", "prompt", "reference", "context", "source"}


@dataclass(frozen=True)
class Probe:
    id: str
    type: str
    prompt: str
    reference: str | None = None
    context: str | None = None
    source: str = ""
    line: int = 0


def bundled_probes() -> Path:
    """The probe set shipped inside the package (a copy of suites/data/hallucination/probes.jsonl)."""
    return Path(auditft.__file__).parent / "resources" / "hallucination" / "probes.jsonl"


def load_probes(path: str | Path) -> list[Probe]:
    """Read and validate a probe file; raises ``DataError`` ("file:line: problem") on the first
    bad line, a missing file, duplicate ids or an empty file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: probe file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read probe file: {' '.join(str(exc).split())}") from None
    probes: list[Probe] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        _check_row(row, where)
        if row["id"] in seen:
            raise DataError(f"{where}: duplicate id {row['id']!r} (first on line {seen[row['id']]})")
        seen[row["id"]] = number
        probes.append(Probe(id=row["id"], type=row["type"], prompt=row["prompt"], reference=row.get("reference"),
                            context=row.get("context"), source=row.get("source") or "", line=number))
    if not probes:
        raise DataError(f"{path}: the probe file has no probes")
    return probes


def _check_row(row: object, where: str) -> None:
    """Raise ``DataError`` for the first problem of one parsed line (``where`` is "file:line")."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: a probe must be a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(KEYS))})")
    for key in ("id", "type", "prompt"):
        if key not in row:
            raise DataError(f"{where}: missing key {key!r}")
    kind = row["type"]
    if kind not in TYPES:
        raise DataError(f"{where}: unknown type {kind!r} (known: {', '.join(TYPES)})")
    for key in REQUIRED[kind]:
        if key not in row:
            raise DataError(f"{where}: missing key {key!r} (required for type {kind!r})")
    for key in ("id", "prompt", *REQUIRED[kind]):
        if not isinstance(row[key], str) or not row[key].strip():
            raise DataError(f"{where}: {key!r} must be a non-empty string")
    for key in ("reference", "context", "source"):
        if key in row and row[key] is not None and not isinstance(row[key], str):
            raise DataError(f"{where}: {key!r} must be a string")


def consistency_subset(probes: list[Probe], k: int) -> list[int]:
    """Indices of ``k`` probes for the self-consistency check: round-robin over the probe
    types in file order (answerable, unanswerable, grounded, answerable, ...), so every type
    is represented; deterministic, independent of the seed."""
    by_type = {t: [i for i, p in enumerate(probes) if p.type == t] for t in TYPES}
    chosen: list[int] = []
    for group in itertools.zip_longest(*by_type.values()):
        for i in group:
            if i is not None and len(chosen) < k:
                chosen.append(i)
    return sorted(chosen)
