"""Conformance checks a plugin author calls from their own tests (re-exported by ``auditft.testing``).

``check_audit(plugin, kind)`` and ``check_tuner(plugin, kind)`` register the plugin on an
isolated plugin manager (built-ins only, no entry points, no environment) and exercise the
contract core relies on, including the typed protocols (``auditft.protocols``: the object a
registered factory returns must be a ``Tuner`` or an ``Audit``). Every failure raises
``PluginCheckError`` (an ``AssertionError``, so pytest shows it as a plain test failure) whose
message names the plugin and what it did wrong.

``common`` holds what both checks share, ``fakes`` the stand-in model sessions (and the markup
planted in the toy data), ``guards`` the deadline and the exit guard around plugin code,
``audits`` and ``tuners`` the two checks, ``contract`` the checks of ``check_audit`` that look
past one result (base figures, metrics produced, split scored, section hooks on absent or
errored results), ``degenerate`` its constant-model step.
"""

from auditft.conformance.audits import check_audit, check_audit_result, check_sections, run_fake
from auditft.conformance.common import (
    CONSTANT_ANSWER,
    DEFAULT_TIMEOUT,
    HOSTILE,
    HOSTILE_ERROR,
    HOSTILE_GROUP,
    HOSTILE_LABEL,
    HOSTILE_TEXT,
    INJECTED,
    PICKLE_SUFFIXES,
    UNKNOWN_OPTION,
    PluginCheckError,
    tiny_model,
)
from auditft.conformance.degenerate import check_constant_model
from auditft.conformance.fakes import ConstantModelSession, FailingModelSession, FakeModelSession
from auditft.conformance.tuners import check_tuner

#: the name auditft's own tests import (``tests/test_degeneracy.py``)
_run_fake = run_fake

__all__ = ["CONSTANT_ANSWER", "DEFAULT_TIMEOUT", "HOSTILE", "HOSTILE_ERROR", "HOSTILE_GROUP", "HOSTILE_LABEL",
           "HOSTILE_TEXT", "INJECTED", "PICKLE_SUFFIXES", "UNKNOWN_OPTION", "ConstantModelSession",
           "FailingModelSession", "FakeModelSession", "PluginCheckError", "check_audit", "check_audit_result",
           "check_constant_model", "check_sections", "check_tuner", "run_fake", "tiny_model"]
