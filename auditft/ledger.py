"""The append-only, hash-chained ledger shared by the runs in one reports directory.

Each line is one JSON event with ``seq`` (1-based line number), ``prev`` (sha256 of the
previous line; 64 zeros for the first) and ``hash`` (sha256 of the event without ``hash``
and ``hmac``). With ``AUDITFT_LEDGER_KEY`` set, each line also carries ``hmac``
(HMAC-SHA256 of the same bytes), so a line cannot be re-forged without the key. Reviewer
events may carry an ed25519 ``signature`` over their payload (see ``auditft.signing``).

Editing, reordering or deleting a line breaks the chain. Deleting the *last* lines leaves a
valid shorter chain, so every run directory keeps a copy of its own events
(``events.jsonl``) with their ``seq`` and ``hash``: ``verify`` checks the two against each
other. Appends take an exclusive ``flock`` and are fsync'ed before returning.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac as hmac_lib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
LEDGER_NAME = "ledger.jsonl"
KEY_ENV = "AUDITFT_LEDGER_KEY"
#: fields added by the chain; everything else is the event's payload (what a signature covers)
CHAIN_FIELDS = ("seq", "time", "prev", "hash", "hmac", "signature")


def now_iso(when: datetime | None = None) -> str:
    return (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def canonical(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def payload(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in CHAIN_FIELDS}


def line_hash(line: str) -> str:
    return hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()


def content_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in event.items() if k not in ("hash", "hmac")})).hexdigest()


def _mac(key: bytes, event: dict[str, Any]) -> str:
    return hmac_lib.new(key, canonical({k: v for k, v in event.items() if k not in ("hash", "hmac")}),
                        hashlib.sha256).hexdigest()


def ledger_key(env: dict[str, str] | None = None) -> bytes | None:
    value = (env if env is not None else os.environ).get(KEY_ENV)
    return value.encode("utf-8") if value else None


@dataclass
class ChainProblem:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


class Ledger:
    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.key = key if key is not None else ledger_key()

    def append(self, event: dict[str, Any], *, when: datetime | None = None) -> dict[str, Any]:
        """Append ``event`` (``type``, ``run_id``, ...); returns it with its chain fields."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                handle.seek(0)
                lines = [line for line in handle.read().splitlines() if line.strip()]
                prev = line_hash(lines[-1]) if lines else GENESIS
                record = {**event, "seq": len(lines) + 1, "time": now_iso(when), "prev": prev}
                record["hash"] = content_hash(record)
                if self.key:
                    record["hmac"] = _mac(self.key, record)
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
        """Every line parses, hashes to its ``hash``, links to the line before, carries a valid
        ``hmac`` when a key is set, and a valid ``signature`` when it has one."""
        from auditft.signing import verify_signature

        if not self.path.exists():
            return []
        problems = []
        prev = GENESIS
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise ValueError
            except ValueError:
                problems.append(ChainProblem(number, "not a JSON event"))
                prev = line_hash(line)
                continue
            if content_hash(event) != event.get("hash"):
                problems.append(ChainProblem(number, "content does not match its hash (edited)"))
            elif event.get("prev") != prev:
                problems.append(ChainProblem(number, "does not link to the line before it (a line was removed, inserted or reordered)"))
            elif event.get("seq") != number:
                problems.append(ChainProblem(number, f"sequence number {event.get('seq')} where {number} was expected"))
            elif self.key and not hmac_lib.compare_digest(str(event.get("hmac", "")), _mac(self.key, event)):
                problems.append(ChainProblem(number, "HMAC missing or wrong (forged, or written without the key)"))
            elif event.get("signature") and not verify_signature(event):
                problems.append(ChainProblem(number, f"signature of {event.get('actor')!r} does not verify"))
            prev = line_hash(line)
        return problems
