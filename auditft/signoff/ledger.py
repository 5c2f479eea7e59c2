"""The append-only, hash-chained ledger shared by the runs in one reports directory.

Each line is one JSON event with ``seq`` (1-based line number), ``prev`` (sha256 of the
previous line; 64 zeros for the first) and ``hash`` (sha256 of the event without ``hash``
and ``hmac``). Reviewer events may carry an ed25519 ``signature`` over their payload (see
``auditft.signoff.signing``).

Lines are written with every non-ASCII character escaped (``ensure_ascii``), so no
character of a comment can split a line (Unicode has eight line separators besides ``\n``,
which ``str.splitlines`` honours), and read back by splitting on ``\n`` alone, exactly as
written.

**Keyed ledgers.** With ``AUDITFT_LEDGER_KEY`` set when the ledger is created, its first
line is a ``ledger`` event saying so (``keyed: true`` and the key's id), and every line
carries ``hmac`` (HMAC-SHA256 of the hashed bytes), so no line can be forged or re-chained
without the key. A keyed ledger stays keyed: an append without the key, or with another
key, is refused before anything is written, and ``verify`` without the key fails. Beside it,
``ledger.head`` holds the last line's ``seq`` and hash under an HMAC, so cutting the tail of
the ledger (and of a run's own copy) is detected too. A ledger created without a key never
takes one later (start a new reports directory to key it).

**Time.** An append is refused when this machine's clock is behind the last event (the
ledger never goes back in time) or implausibly far ahead of it; ``verify`` flags events out
of time order and events dated in the future of the verifying machine's clock.

Editing, reordering or deleting a line breaks the chain. Deleting the *last* lines of an
unkeyed ledger leaves a valid shorter chain, so every run directory keeps a copy of its own
events (``events.jsonl``): ``verify`` checks the two against each other. Appends take an
exclusive ``flock`` and are fsync'ed before returning.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac as hmac_lib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from auditft.errors import IntegrityError
from auditft.signoff import clock
from auditft.signoff.clock import CLOCK_SKEW, now_iso, parse_iso
from auditft.signoff.encoding import CHAIN_FIELDS, canonical, content_hash, key_id, line_hash, serialise, split_lines

GENESIS = "0" * 64
LEDGER_NAME = "ledger.jsonl"
HEAD_NAME = "ledger.head"
KEY_ENV = "AUDITFT_LEDGER_KEY"
#: an append dated further than this after the last event is refused (a clock set to 2099)
MAX_GAP = timedelta(days=400)


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


class LedgerError(IntegrityError):
    """An append refused before anything was written (exit 6: the ledger would be broken)."""


class Ledger:
    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.key = key if key is not None else ledger_key()

    @property
    def head_path(self) -> Path:
        return self.path.with_name(HEAD_NAME)

    def _lines(self) -> list[str]:
        return split_lines(self.path.read_text(encoding="utf-8")) if self.path.exists() else []

    def keyed(self, lines: list[str] | None = None) -> str | None:
        """The key id when the ledger is keyed ("legacy" for a keyed ledger written before the
        header existed: its first line carries an HMAC), else ``None``."""
        lines = self._lines() if lines is None else lines
        if not lines:
            return None
        try:
            first = json.loads(lines[0])
        except ValueError:
            return None
        if not isinstance(first, dict):
            return None
        if first.get("type") == "ledger":
            return str(first.get("key_id")) if first.get("keyed") else None
        return "legacy" if first.get("hmac") else None

    def _refuse_unless_writable(self, lines: list[str], now: datetime) -> None:
        keyed = self.keyed(lines)
        if keyed and not self.key:
            raise LedgerError(f"{self.path}: the ledger is keyed (key id {keyed}); set {KEY_ENV} to write to it "
                              "(nothing was written)")
        if keyed and keyed != "legacy" and self.key and key_id(self.key) != keyed:
            raise LedgerError(f"{self.path}: {KEY_ENV} is not this ledger's key (key id {key_id(self.key)}, the "
                              f"ledger's is {keyed}); nothing was written")
        if lines and not keyed and self.key:
            raise LedgerError(f"{self.path}: the ledger was created without a key and cannot take one now; use a "
                              f"new reports directory for a keyed ledger, or unset {KEY_ENV} (nothing was written)")
        if lines:
            try:
                last = parse_iso(json.loads(lines[-1])["time"])
            except (ValueError, KeyError, TypeError):
                return  # a broken last line is verify's to report; the chain will not link
            if now < last - CLOCK_SKEW:
                raise LedgerError(f"{self.path}: this machine's clock ({now_iso(now)}) is behind the ledger's last "
                                  f"event ({now_iso(last)}); a ledger never goes back in time (check the clock; "
                                  "nothing was written)")
            if now > last + MAX_GAP:
                raise LedgerError(f"{self.path}: this machine's clock ({now_iso(now)}) is more than "
                                  f"{MAX_GAP.days} days after the ledger's last event ({now_iso(last)}); check the "
                                  "clock (nothing was written)")

    def _seal(self, record: dict[str, Any]) -> dict[str, Any]:
        record["hash"] = content_hash(record)
        if self.key:
            record["hmac"] = _mac(self.key, record)
        return record

    def check_writable(self, when: datetime | None = None) -> None:
        """Raise ``LedgerError`` when an append now would be refused (for callers that must
        refuse before they create anything, such as ``auditft run``)."""
        self._refuse_unless_writable(self._lines(), when or clock.utcnow())

    def append(self, event: dict[str, Any], *, when: datetime | None = None) -> dict[str, Any]:
        """Append ``event`` (``type``, ``run_id``, ...); returns it with its chain fields."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = when or clock.utcnow()
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                handle.seek(0)
                lines = split_lines(handle.read())
                self._refuse_unless_writable(lines, now)
                new: list[str] = []
                if not lines and self.key:  # a keyed ledger says so in its first line
                    header = self._seal({"type": "ledger", "keyed": True, "key_id": key_id(self.key), "seq": 1,
                                         "time": now_iso(now), "prev": GENESIS})
                    new.append(serialise(header))
                prev = line_hash((lines + new)[-1]) if lines or new else GENESIS
                record = self._seal({**event, "seq": len(lines) + len(new) + 1, "time": now_iso(now), "prev": prev})
                new.append(serialise(record))
                # proof of time from a TSA, when the team has one, before the line exists
                from auditft.signoff import timestamping

                timestamping.stamp_line(self.path, record, new[-1])
                handle.seek(0, os.SEEK_END)
                handle.write("".join(line + "\n" for line in new))
                handle.flush()
                os.fsync(handle.fileno())
                if self.key:
                    self._write_head(record["seq"], line_hash(new[-1]))
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return record

    def _head_mac(self, seq: int, digest: str) -> str:
        assert self.key
        return hmac_lib.new(self.key, f"auditft-ledger-head:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()

    def _write_head(self, seq: int, digest: str) -> None:
        from auditft.fsutil import atomic_write_text

        atomic_write_text(self.head_path, json.dumps({"seq": seq, "hash": digest,
                                                      "hmac": self._head_mac(seq, digest)}) + "\n")

    def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self._lines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and (run_id is None or event.get("run_id") == run_id):
                out.append(event)
        return out

    def verify(self, now: datetime | None = None) -> list[ChainProblem]:
        """Every line parses, hashes to its ``hash``, links to the line before, carries a valid
        ``hmac`` when the ledger is keyed, and a valid ``signature`` when it has one; times
        never go back and none lies in the future; a keyed ledger's head record matches."""
        from auditft.signoff.signing import verify_signature

        lines = self._lines()
        if not lines:
            return []
        now = now or clock.utcnow()
        keyed = self.keyed(lines)
        problems = []
        if keyed and not self.key:
            problems.append(ChainProblem(1, f"the ledger is keyed (key id {keyed}): set {KEY_ENV} to verify it"))
        elif keyed and keyed != "legacy" and self.key and key_id(self.key) != keyed:
            problems.append(ChainProblem(1, f"{KEY_ENV} is not this ledger's key (key id {keyed})"))
        check_macs = bool(self.key) and not problems
        prev, last_time = GENESIS, None
        for number, line in enumerate(lines, start=1):
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
            elif check_macs and not hmac_lib.compare_digest(str(event.get("hmac", "")), _mac(self.key, event)):  # type: ignore[arg-type]
                problems.append(ChainProblem(number, "HMAC missing or wrong (forged, or written without the key)"))
            elif event.get("signature") and not verify_signature(event):
                problems.append(ChainProblem(number, f"signature of {event.get('actor')!r} does not verify"))
            else:
                problems.extend(_time_problems(number, event, last_time, now))
            try:
                last_time = parse_iso(event["time"])
            except (KeyError, ValueError, TypeError):
                pass
            prev = line_hash(line)
        if check_macs and keyed != "legacy":
            problems.extend(self._head_problems(lines))
        return problems

    def _head_problems(self, lines: list[str]) -> list[ChainProblem]:
        where = len(lines)
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
            seq, digest = int(head["seq"]), str(head["hash"])
        except (OSError, ValueError, KeyError, TypeError):
            return [ChainProblem(where, f"{self.head_path.name}: missing or unreadable (a keyed ledger's tail "
                                        "cannot be checked without it)")]
        if not hmac_lib.compare_digest(str(head.get("hmac", "")), self._head_mac(seq, digest)):
            return [ChainProblem(where, f"{self.head_path.name}: HMAC wrong (forged)")]
        if seq > len(lines) or line_hash(lines[seq - 1]) != digest:
            return [ChainProblem(where, f"the ledger ends at seq {len(lines)} but its head record says seq {seq} "
                                        "(the tail was cut or replaced)")]
        return []


def _time_problems(number: int, event: dict[str, Any], last: datetime | None, now: datetime) -> list[ChainProblem]:
    try:
        when = parse_iso(event["time"])
    except (KeyError, ValueError, TypeError):
        return [ChainProblem(number, "no readable time")]
    if last is not None and when < last - CLOCK_SKEW:
        return [ChainProblem(number, f"dated {event['time']}, before the event above it (time went backwards)")]
    if when > now + CLOCK_SKEW:
        return [ChainProblem(number, f"dated {event['time']}, in the future of this machine's clock ({now_iso(now)})")]
    return []
