"""What keeps a broken plugin from taking the author's test run down with it: every call into
plugin code the kit makes runs under a deadline (``DEFAULT_TIMEOUT``, core's own
``auditft.isolation`` timer) and an exit guard (``sys.exit`` or a ``KeyboardInterrupt`` raised
by the plugin becomes a ``PluginCheckError`` naming it, instead of ending pytest silently)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from auditft.conformance.common import PluginCheckError
from auditft.records import AuditResult

if TYPE_CHECKING:
    from auditft.jobs import AuditJob
    from auditft.registry import Entry

#: the start of core's error for an audit past its deadline (``auditft.isolation.run_audit``)
TIMED_OUT = "timed out after"


@contextmanager
def no_exit(name: str, what: str, kind: str, step: str = "run") -> Iterator[None]:
    """``SystemExit``, ``os._exit`` and a ``KeyboardInterrupt`` the plugin raises itself become a
    ``PluginCheckError``; a real Ctrl-C (a SIGINT delivered while the block runs) still stops.
    Core's own guards (``auditft.guards``), so the kit judges exactly what a run would."""
    from auditft import guards

    advice = "raise an exception instead, core turns it into an error result"
    with guards.signals_watched() as signals:
        try:
            with guards.no_process_exit():
                yield
        except guards.PluginExit as exc:
            raise PluginCheckError(f"plugin {name!r}: {what} {kind!r} called os._exit({exc.code}) in {step}: it "
                                   f"would end the whole auditft run; {advice}") from None
        except SystemExit as exc:
            if signals.received:
                raise
            raise PluginCheckError(
                f"plugin {name!r}: {what} {kind!r} called sys.exit({exc.code!r}) (SystemExit) in {step}: it would "
                f"end the whole auditft run; {advice}") from None
        except KeyboardInterrupt:
            if signals.received:
                raise
            raise PluginCheckError(
                f"plugin {name!r}: {what} {kind!r} raised KeyboardInterrupt in {step} without a Ctrl-C: it would "
                f"stop the whole auditft run; {advice}") from None


def guarded_run(entry: Entry, job: AuditJob, *, name: str, timeout: float | None) -> AuditResult:
    """The audit through core's error isolation (``auditft.isolation.run_audit``, strict) under
    ``timeout`` seconds and the exit guard; an overrun is a ``PluginCheckError``."""
    from auditft.isolation import run_audit

    with no_exit(name, "audit", entry.kind):
        result = run_audit(entry, job, timeout=timeout, strict=True)
    timed_out(result, name, "audit", entry.kind, timeout)
    return result


def timed_out(result: object, name: str, what: str, kind: str, timeout: float | None) -> None:
    """Fail a result whose error says core stopped the audit at its deadline."""
    error = getattr(result, "error", None) if isinstance(result, AuditResult) else None
    if timeout and error and TIMED_OUT in error:
        raise PluginCheckError(
            f"plugin {name!r}: {what} {kind!r} did not finish within {timeout:g} s on the kit's toy data (a hang? "
            "check_audit(..., timeout=SECONDS) sets the limit)")


@contextmanager
def deadline(name: str, what: str, kind: str, timeout: float | None, step: str) -> Iterator[None]:
    """Plugin code other than an audit's ``run`` (a tuner's ``tune`` / ``load``) under
    ``timeout`` seconds (core's timer, ``auditft.isolation``) and the exit guard."""
    from auditft.isolation import AuditTimeout, time_limit

    try:
        with no_exit(name, what, kind, step), time_limit(timeout):
            yield
    except AuditTimeout:
        raise PluginCheckError(
            f"plugin {name!r}: {what} {kind!r} did not finish {step} within {timeout:g} s on the tiny model (a "
            f"hang? check_{what}(..., timeout=SECONDS) sets the limit)") from None
