"""Exit codes cannot lie, and declarations mean something (issue 22).

Whatever a plugin does (``sys.exit(0)``, ``os._exit(0)``, a ``KeyboardInterrupt`` it raises,
a child process it forks and ends, a signal it sends), ``auditft run`` exits 0 only when a
report with every check ``pass`` was written. An audit that reaches the network without
declaring ``needs_network`` fails; one that declares it is refused in an offline run.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import socket
import sys
import types

import pytest
from click.testing import CliRunner

from auditft import guards, hookimpl
from auditft.cli import cli
from auditft.records import AuditResult, Metric
from auditft.run import execute, prepare
from auditft.testing import registered, toy_classification_data, write_suite


def _fine(kind):
    return AuditResult(kind=kind, metrics={"score": Metric(0.9, n=100)})


def _sys_exit(kind, job):
    sys.exit(0)


def _os_exit(kind, job):
    os._exit(0)


def _keyboard(kind, job):
    raise KeyboardInterrupt


def _fork_child(kind, job):
    # a child the plugin starts ends with os._exit as it should; the audit itself is fine
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 7
    return _fine(kind)


def _network(kind, job):
    socket.create_connection(("example.com", 80), timeout=2)
    return _fine(kind)


def _network_swallowed(kind, job):
    try:
        socket.getaddrinfo("example.com", 443)
    except OSError:
        pass  # a plugin that catches the refusal is still caught using the network
    return _fine(kind)


def _loopback(kind, job):
    # local IPC is not the network: a loopback server stays reachable
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=2):
        pass
    server.close()
    return _fine(kind)


def _declared(kind, job):
    return _fine(kind)


class _Audit:
    def __init__(self, kind, behave):
        self.kind, self.behave = kind, behave

    def __call__(self, options):
        return self

    def run(self, job):
        return self.behave(self.kind, job)


class Misbehaving:
    def __init__(self, behaviours, network=()):
        self.behaviours, self.network = behaviours, set(network)

    @hookimpl
    def auditft_register_audits(self, register):
        for kind, behave in self.behaviours.items():
            register.add(kind, _Audit(kind, behave), metrics={"score": "higher"},
                         needs_network=kind in self.network)


def _suite(tmp_path, tiny_model_dir, kinds):
    toy_classification_data(tmp_path)
    audits = [{"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.0, "rationale": "r"}]}]
    audits += [{"kind": k, "gates": [{"metric": "score", "min": 0.5, "rationale": "r"}]} for k in kinds]
    return write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, audits=audits)


BEHAVIOURS = {"sysexit": _sys_exit, "osexit": _os_exit, "keyboard": _keyboard, "forkchild": _fork_child,
              "network": _network, "swallowed": _network_swallowed, "loopback": _loopback, "declared": _declared}


def test_a_misbehaving_audit_becomes_an_error_check_and_the_run_completes(tmp_path, tiny_model_dir, pm,
                                                                         monkeypatch):
    monkeypatch.setenv(guards.OFFLINE_ENV, "1")  # the declared network audit is refused offline
    suite = _suite(tmp_path, tiny_model_dir, BEHAVIOURS)
    with registered(pm, Misbehaving(BEHAVIOURS, network={"declared"}), "misbehaving"):
        report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")
    run_dir = tmp_path / "reports" / report["run_id"]
    assert json.loads((run_dir / "state.json").read_text())["phase"] == "complete"
    assert report["verdict"] == "blocked"
    status = {c["audit"]: c["status"] for c in report["checks"] if c["metric"] == "score"}
    errors = {kind: report["audits"][kind]["error"] or "" for kind in BEHAVIOURS}
    assert status["forkchild"] == status["loopback"] == "pass", errors
    for kind in ("sysexit", "osexit", "keyboard", "network", "swallowed", "declared"):
        assert status[kind] == "error", (kind, errors[kind])
    assert "called sys.exit(0)" in errors["sysexit"]
    assert "called os._exit(0)" in errors["osexit"]
    assert "called KeyboardInterrupt" in errors["keyboard"]
    assert "without declaring needs_network (name lookup of example.com" in errors["network"]
    assert "without declaring needs_network (name lookup of example.com" in errors["swallowed"]
    assert "refused in an offline run (AUDITFT_OFFLINE=1)" in errors["declared"]
    # provenance per result and per check
    assert report["audits"]["sysexit"]["plugin"] == "misbehaving"
    assert {c["plugin"] for c in report["checks"] if c["audit"] == "network"} == {"misbehaving"}
    # the guards are gone once the audits ran
    assert os._exit.__module__ == "posix" and socket.getaddrinfo.__module__ == "socket"


def test_a_declared_network_audit_is_refused_when_no_network_answers(monkeypatch):
    from auditft.isolation import run_audit
    from auditft.registry import Entry

    monkeypatch.delenv(guards.OFFLINE_ENV, raising=False)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    monkeypatch.setenv(guards.PROBE_ENV, f"127.0.0.1:{port}")
    entry = Entry(kind="judge", factory=_Audit("judge", _declared), plugin="judgeplugin", version="1.0",
                  needs_network=True)
    result = run_audit(entry, job=types.SimpleNamespace(options=None))
    assert result.error and "reaches no network" in result.error and result.plugin == "judgeplugin"


def test_a_network_tuner_is_refused_offline_before_anything_runs(tmp_path, tiny_model_dir, pm, monkeypatch):
    from auditft.errors import SuiteError

    class NetworkTuner:
        @hookimpl
        def auditft_register_tuners(self, register):
            register.add("remote", lambda options: None, needs_network=True)

    monkeypatch.setenv(guards.OFFLINE_ENV, "1")
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, tuner={"kind": "remote"})
    with registered(pm, NetworkTuner(), "remotetuner"), pytest.raises(SuiteError, match="refused in an offline run"):
        prepare(suite, pm)
    assert not (tmp_path / "reports").exists()


# -- through the CLI: the exit code itself --------------------------------------------------------


class _EntryPoint:
    group = "auditft"

    def __init__(self, name, module):
        self.name, self.value, self.module = name, module, module

    def load(self):
        return sys.modules[self.module]


@pytest.fixture
def installed(monkeypatch):
    """Install a plugin module (hooks given as functions) as an entry point for the CLI."""
    def install(name, **hooks):
        module = types.ModuleType(f"auditft_test_{name}")
        for hook, function in hooks.items():
            setattr(module, hook, hookimpl(function))
        monkeypatch.setitem(sys.modules, module.__name__, module)
        dist = types.SimpleNamespace(metadata={"name": name}, version="0.1", name=name, _normalized_name=name,
                                     entry_points=[_EntryPoint(name, module.__name__)])
        monkeypatch.setattr(importlib.metadata, "distributions", lambda: [dist])
        monkeypatch.setattr(importlib.metadata, "entry_points",
                            lambda group=None: [ep for ep in dist.entry_points if group in (None, ep.group)])
    previous = signal.getsignal(signal.SIGTERM)
    yield install
    signal.signal(signal.SIGTERM, previous)  # `auditft run` installs its own SIGTERM handler


def _register(behave):
    def auditft_register_audits(register):
        register.add("rogue", _Audit("rogue", behave), metrics={"score": "higher"})
    return auditft_register_audits


def _run(tmp_path, suite):
    return CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "reports"), "--author", "alice"])


def test_sys_exit_0_in_an_audit_gives_a_blocked_exit_not_0(tmp_path, tiny_model_dir, installed):
    installed("rogue", auditft_register_audits=_register(_sys_exit))
    result = _run(tmp_path, _suite(tmp_path, tiny_model_dir, ["rogue"]))
    assert result.exit_code == 3, result.output  # blocked: the check on the rogue audit is `error`
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    assert {c["status"] for c in report["checks"] if c["audit"] == "rogue"} == {"error"}


def test_sys_exit_0_in_an_observer_hook_fails_the_run(tmp_path, tiny_model_dir, installed):
    def auditft_run_started(run):
        sys.exit(0)

    installed("observer", auditft_run_started=auditft_run_started)
    suite = _suite(tmp_path, tiny_model_dir, [])
    result = _run(tmp_path, suite)
    assert result.exit_code == 1 and "a plugin called sys.exit(0) during the run" in result.output, result.output
    state = json.loads(next((tmp_path / "reports").glob("*/state.json")).read_text())
    assert state["phase"] == "failed" and not list((tmp_path / "reports").glob("*/report.json"))


def test_a_real_signal_during_an_audit_stops_the_run(tmp_path, tiny_model_dir, installed):
    def _terminated(kind, job):
        os.kill(os.getpid(), signal.SIGTERM)  # as a CI timeout would
        return _fine(kind)

    installed("rogue", auditft_register_audits=_register(_terminated))
    result = _run(tmp_path, _suite(tmp_path, tiny_model_dir, ["rogue"]))
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    state = json.loads(next((tmp_path / "reports").glob("*/state.json")).read_text())
    assert state["phase"] == "failed" and "signal 15" in state["error"]
