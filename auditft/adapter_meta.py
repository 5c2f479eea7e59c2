"""The adapter's metadata file (``auditft_adapter.json``): what the adapter is, next to its
weights, so it can be loaded back without the suite (by the run's audits, by a later run that
uses it as a teacher). Standard library only: everything that reads adapters may import it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_FILE = "auditft_adapter.json"


def write_meta(adapter_dir: Path, **meta: object) -> None:
    """What the adapter is, next to its weights: enough to load it back without the suite."""
    path = Path(adapter_dir) / META_FILE
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_meta(adapter_dir: Path) -> dict[str, Any]:
    path = Path(adapter_dir) / META_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
