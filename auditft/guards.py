"""Guards around plugin code, so that what a plugin does cannot make core lie.

* ``no_process_exit``: ``os._exit`` called from this process while plugin code runs raises
  ``PluginExit`` instead of ending the process with whatever code the plugin chose (a child
  process the plugin started still exits normally: the guard checks the process id).
* ``signals_watched``: tells a real interrupt (SIGINT, SIGTERM delivered to the process) from a
  ``KeyboardInterrupt`` or ``SystemExit`` a plugin raises itself; the first stops the run, the
  second is the plugin's failure.
* ``no_network``: outbound connections and name lookups from Python's ``socket`` module are
  refused and recorded while a plugin that did not declare ``needs_network`` runs. Loopback
  addresses and Unix sockets stay open: they are local IPC, not the network.
* ``offline`` / ``network_reachable``: whether a plugin that declares ``needs_network`` may run.

Standard library only, imported by the orchestration and the CLI.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NoReturn

OFFLINE_ENV = "AUDITFT_OFFLINE"
#: ``host:port`` a run connects to (3 s) before starting a ``needs_network`` plugin
PROBE_ENV = "AUDITFT_NETWORK_PROBE"
DEFAULT_PROBE = "huggingface.co:443"


class PluginExit(BaseException):
    """``os._exit(code)`` called by plugin code, turned into an exception core handles."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def no_process_exit() -> Iterator[None]:
    real = os._exit
    owner = os.getpid()

    def guarded(code: int) -> NoReturn:
        if os.getpid() != owner:  # a child the plugin forked: let it end as it asked
            real(code)
        raise PluginExit(code)

    os._exit = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real


@dataclass
class SignalState:
    received: list[int] = field(default_factory=list)


@contextmanager
def signals_watched() -> Iterator[SignalState]:
    """Record SIGINT/SIGTERM deliveries, then let the previous handlers act as before."""
    state = SignalState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous: dict[int, object] = {}

    def handler(signum: int, frame: object) -> None:
        state.received.append(signum)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)

    for signum in (int(signal.SIGINT), int(signal.SIGTERM)):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield state
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)  # type: ignore[arg-type]


def _is_local(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def no_network(attempts: list[str]) -> Iterator[None]:
    """Refuse (``PermissionError``) and record every non-local connect and name lookup."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(what: str) -> PermissionError:
        attempts.append(what)
        return PermissionError(f"auditft: network use refused ({what}): the plugin does not declare needs_network")

    def checked(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) \
                and not _is_local(address[0]):
            raise refuse(f"connect to {address[0]}:{address[1]}")

    def connect(sock: socket.socket, address: object) -> None:
        checked(sock, address)
        real_connect(sock, address)  # type: ignore[arg-type]

    def connect_ex(sock: socket.socket, address: object) -> int:
        checked(sock, address)
        return real_connect_ex(sock, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _is_local(host):
            raise refuse(f"name lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


def offline(env: dict[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")


def network_reachable() -> bool:
    """Whether this machine reaches ``$AUDITFT_NETWORK_PROBE`` (default huggingface.co:443)."""
    return _reachable(os.environ.get(PROBE_ENV, DEFAULT_PROBE))


@lru_cache(maxsize=8)
def _reachable(target: str) -> bool:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


def network_refusal(needs_network: bool) -> str | None:
    """Why a plugin that declares ``needs_network`` may not run here, or None."""
    if not needs_network:
        return None
    if offline():
        return f"declares needs_network; refused in an offline run ({OFFLINE_ENV}=1)"
    if not network_reachable():
        target = os.environ.get(PROBE_ENV, DEFAULT_PROBE)
        return f"declares needs_network and this machine reaches no network ({target} did not answer); refused"
    return None
