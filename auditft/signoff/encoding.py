"""How events are written and hashed: one ASCII JSON line each, a canonical byte form for
hashes and signatures, and the payload a signature covers (the event without chain fields)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: fields added by the chain; everything else is the event's payload (what a signature covers)
CHAIN_FIELDS = ("seq", "time", "prev", "hash", "hmac", "signature")


def serialise(event: dict[str, Any]) -> str:
    """One ledger line: ASCII only, so no character inside can split it."""
    return json.dumps(event, sort_keys=True, ensure_ascii=True)


def split_lines(text: str) -> list[str]:
    """The lines of a ledger or run record, split on ``\n`` only (as ``serialise`` writes;
    older lines kept raw non-ASCII, which ``str.splitlines`` would cut at U+2028 or U+0085)."""
    return [line for line in text.split("\n") if line.strip()]


def key_id(key: bytes) -> str:
    """A public name for a ledger key (it identifies, it does not reveal)."""
    return hashlib.sha256(b"auditft-ledger-key:" + key).hexdigest()[:16]


def canonical(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def payload(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in CHAIN_FIELDS}


def line_hash(line: str) -> str:
    return hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()


def content_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in event.items() if k not in ("hash", "hmac")})).hexdigest()
