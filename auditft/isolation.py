"""Audit isolation: a plugin's audit runs under a deadline, and whatever it does (raise,
overrun, return something malformed or non-finite) becomes an ``error`` result of that audit
alone; the run goes on, the gate blocks, the report is written."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from auditft.records import AuditResult

if TYPE_CHECKING:
    from types import FrameType

    from auditft.jobs import AuditJob, Models
    from auditft.registry import Entry


class AuditTimeout(BaseException):
    """Raised inside an audit at its deadline. A BaseException, so a plugin's broad
    ``except Exception`` cannot swallow it and keep running."""


def run_audit(entry: Entry, job: AuditJob, *, timeout: float | None = None, strict: bool = False) -> AuditResult:
    """An audit that raises, overruns ``timeout``, returns a malformed result, ends the process
    (``sys.exit``, ``os._exit``, a ``KeyboardInterrupt`` it raises itself) or reaches the network
    without declaring ``needs_network`` becomes an ``error`` result; the run goes on, the gate
    blocks, the report is written. A real interrupt (SIGINT/SIGTERM) still stops the run.
    ``strict`` (the conformance kit) returns a returned result as it is, for the kit to judge.
    Every result carries the plugin and version that produced it."""
    from auditft import guards

    started = time.perf_counter()
    refusal = guards.network_refusal(entry.needs_network)
    if refusal is not None:
        return _failed(entry, refusal, started)
    attempts: list[str] = []
    network = nullcontext() if entry.needs_network else guards.no_network(attempts)
    with guards.signals_watched() as signals:
        try:
            with time_limit(timeout), guards.no_process_exit(), network:
                result = entry.factory(job.options).run(job)
            if attempts:  # refused, and the plugin carried on: the figures may be incomplete
                raise MalformedResult(_network_message(attempts))
            result = result if strict else _usable(result, entry.kind)
            return replace(result, plugin=entry.plugin, plugin_version=entry.version) \
                if isinstance(result, AuditResult) else result
        except AuditTimeout:
            message = f"timed out after {timeout:g} s (audits[].timeout in the suite)"
        except MalformedResult as exc:
            message = str(exc) if attempts else f"malformed result: {exc}"
        except guards.PluginExit as exc:
            message = f"called os._exit({exc.code}); an audit returns a result or raises"
        except (SystemExit, KeyboardInterrupt) as exc:
            if signals.received:
                raise  # the user (or the CI) stopped the run: not the plugin's doing
            what = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else "KeyboardInterrupt"
            message = f"called {what}; an audit returns a result or raises"
        except Exception as exc:  # isolate plugin failures: shown as `error`, never a crash
            message = f"{type(exc).__name__}: {exc}"
            if attempts:
                message = f"{_network_message(attempts)} ({message})"
    return _failed(entry, message, started)


def _failed(entry: Entry, message: str, started: float) -> AuditResult:
    return AuditResult(kind=entry.kind, error=f"plugin {entry.plugin!r}: {' '.join(message.split())[:500]}",
                       seconds=round(time.perf_counter() - started, 3), plugin=entry.plugin,
                       plugin_version=entry.version)


def _network_message(attempts: list[str]) -> str:
    more = f" and {len(attempts) - 1} more" if len(attempts) > 1 else ""
    return f"used the network without declaring needs_network ({attempts[0]}{more}; refused)"


class MalformedResult(Exception):
    pass


def _usable(result: object, kind: str) -> AuditResult:
    """Structural problems make the audit an ``error``; a non-finite figure is set to None so
    the gate marks just the checks on it ``error`` ("value is not a finite number")."""
    import math

    from auditft.records import Metric

    if not isinstance(result, AuditResult):
        raise MalformedResult(f"returned {type(result).__name__}, not AuditResult")
    if result.kind != kind:
        raise MalformedResult(f"returned a result of kind {result.kind!r}")
    if not isinstance(result.metrics, dict) or not all(isinstance(m, Metric) for m in result.metrics.values()):
        raise MalformedResult("metrics must map names to auditft.records.Metric")

    def finite(x: object) -> Any:
        return x if x is None or (isinstance(x, (int, float)) and math.isfinite(x)) else None

    metrics, notes = {}, list(result.notes)
    for name, m in result.metrics.items():
        clean = replace(m, value=finite(m.value), ci_low=finite(m.ci_low), ci_high=finite(m.ci_high),
                        base_value=finite(m.base_value))
        if clean != m:
            notes.append(f"metric {name!r} had a non-finite or non-numeric figure ({m.value!r}); "
                         "its checks show error")
        metrics[name] = clean
    try:
        result = replace(result, metrics=metrics, notes=notes)
        json.dumps(result.to_dict(), allow_nan=False)
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedResult(f"not JSON-serialisable: {exc}") from None
    return result


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``AuditTimeout`` in this thread after ``seconds`` (a POSIX interval timer on the
    main thread; elsewhere, e.g. Windows or a worker thread, the limit is not enforced)."""
    import signal
    import threading

    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise AuditTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def profiled(session: Models, kind: str, run: Callable[[], AuditResult]) -> AuditResult:
    """Run one audit and attach core's degeneracy profiles of the models it scored (core-owned:
    whatever the plugin put in ``scored_models`` is replaced)."""
    recorder = getattr(session, "recorder", None)
    if recorder is None:
        return run()
    recorder.start(kind)
    result = run()
    return replace(result, scored_models=[p.to_dict() for p in recorder.profiles(kind)] if not result.error else [])


