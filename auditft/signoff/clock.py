"""The one clock sign-off reads, and the ledger's time format.

Every decision that depends on the time (appends, review windows, approval expiry, release)
reads ``clock.utcnow()`` through this module, so one monkeypatch moves them all in tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

#: clocks of the machines sharing a ledger may differ by this much
CLOCK_SKEW = timedelta(minutes=5)


def utcnow() -> datetime:
    """The clock every ledger decision reads (one place, so tests can move it)."""
    return datetime.now(timezone.utc)


def now_iso(when: datetime | None = None) -> str:
    from auditft.signoff import clock

    return (when or clock.utcnow()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
