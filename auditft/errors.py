"""Error types and exit codes.

Every error a user can cause is an ``AuditftError`` whose message is one line naming the
file, key path or row; the CLI prints it without a traceback and exits with its code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the ``auditft`` command (a contract: CI pipelines gate on them)."""

    #: Everything passed (for ``run``: all checks passed, awaiting review).
    OK = 0
    #: Internal error: a bug or an environment problem, not the user's input.
    INTERNAL = 1
    #: Invalid input: suite, data, model path, run directory or option.
    INVALID = 2
    #: ``run``: the gate blocked the release (a check failed, was insufficient or errored).
    BLOCKED = 3
    #: ``approve``/``waive``/``release`` refused by policy.
    REFUSED = 4
    #: Integrity failure: artefact bytes or the ledger do not match the record.
    INTEGRITY = 6


class AuditftError(Exception):
    """Base class: a user-facing failure with a one-line message and an exit code."""

    exit_code: ExitCode = ExitCode.INVALID


class SuiteError(AuditftError):
    """The suite file is invalid; the message names the file and the key path."""


class DataError(AuditftError):
    """A data file is missing, unreadable or has a bad row; the message names file and row."""


class ModelError(AuditftError):
    """A base model cannot be resolved or loaded safely."""


class PluginError(AuditftError):
    """A plugin broke the contract; the message names the plugin."""


class AuditError(AuditftError):
    """Raised by audit plugins for a failure the report should show as ``error``."""

    exit_code = ExitCode.INTERNAL


class RunAborted(AuditftError):
    """A plugin ended the process (``sys.exit(0)``, ``os._exit``) outside an audit, where core
    cannot turn it into an ``error`` check: the run is failed and the exit code says so."""

    exit_code = ExitCode.INTERNAL


class RunDirError(AuditftError):
    """A path given as a run directory is not one."""


class RefusedError(AuditftError):
    """A policy refused the action (approve, waive, release)."""

    exit_code = ExitCode.REFUSED


class IntegrityError(AuditftError):
    """Artefact bytes or the ledger chain do not match what was recorded."""

    exit_code = ExitCode.INTEGRITY
