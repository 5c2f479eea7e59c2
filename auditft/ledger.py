"""The append-only, hash-chained ledger shared by the runs in one reports directory.

Each line is one JSON event carrying ``prev``, the sha256 of the previous line (the first
line's ``prev`` is 64 zeros), and ``hash``, the sha256 of the event without ``hash``.
Editing or deleting a line breaks the chain. Appends take an exclusive ``flock`` so
concurrent writers cannot interleave, and are fsync'ed before returning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
LEDGER_NAME = "ledger.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def line_hash(line: str) -> str:
    return hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()


@dataclass
class ChainProblem:
    line: int
    problem: str


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append ``event`` (``type``, ``run_id`` and fields); returns it with chain fields."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                handle.seek(0)
                lines = [line for line in handle.read().splitlines() if line.strip()]
                prev = line_hash(lines[-1]) if lines else GENESIS
                record = {"seq": len(lines) + 1, "time": now_iso(), **event, "prev": prev}
                record["hash"] = hashlib.sha256(_canonical(record)).hexdigest()
                handle.seek(0, os.SEEK_END)
                handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return record

    def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if run_id is None or event.get("run_id") == run_id:
                out.append(event)
        return out

    def verify(self) -> list[ChainProblem]:
        """Every line parses, hashes to its ``hash`` and links to the line before."""
        if not self.path.exists():
            return []
        problems = []
        prev = GENESIS
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                problems.append(ChainProblem(number, "not valid JSON"))
                prev = line_hash(line)
                continue
            claimed = event.pop("hash", None)
            if hashlib.sha256(_canonical(event)).hexdigest() != claimed:
                problems.append(ChainProblem(number, "content does not match its hash (edited)"))
            elif event.get("prev") != prev:
                problems.append(ChainProblem(number, "does not link to the previous line (a line was removed or reordered)"))
            elif event.get("seq") != number:
                problems.append(ChainProblem(number, f"sequence number {event.get('seq')} where {number} was expected"))
            prev = line_hash(line)
        return problems
