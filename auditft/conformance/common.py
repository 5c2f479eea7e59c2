"""What the audit and tuner checks share: the error they raise, an isolated manager holding the
plugin, its registered entry, its options, a scratch folder, the toy suite and tiny models, and
the check that a factory's object has the methods of its protocol (``auditft.protocols``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import PluginError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from auditft.plugins import PluginManager
    from auditft.registry import Entry

#: a key no plugin's options model should accept
UNKNOWN_OPTION = "auditft_conformance_unknown_key"
#: planted in the fake model's answers: a report section must escape it
HOSTILE = "<script>alert('auditft-check')</script>"
#: planted in the fake job's data (every example's text, every label name, every group value)
#: and in the error of an errored result: a report section must escape these too
HOSTILE_TEXT = "<script>alert('auditft-text')</script>"
HOSTILE_LABEL = "<img src=x onerror=alert('auditft-label')>"
HOSTILE_GROUP = "<img src=x onerror=alert('auditft-group')>"
HOSTILE_ERROR = "<script>alert('auditft-error')</script>"
#: what each planted string is, as a section check names it
PLANTED = {HOSTILE: "model output", HOSTILE_TEXT: "example text", HOSTILE_LABEL: "a label name",
           HOSTILE_GROUP: "a group value", HOSTILE_ERROR: "an error message"}
#: the start of every planted string: found unescaped in a section (even cut short), it is markup
RAW_MARKUP = ("<script>alert(", "<img src=x onerror=")
#: seconds ``check_audit`` / ``check_tuner`` give the plugin before failing it as hanging
DEFAULT_TIMEOUT = 600.0
#: file suffixes of pickled weights, which auditft never loads
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
INJECTED = "injected model failure (auditft.testing.check_audit)"
#: what the constant model answers to every prompt (an abstention, as the toy task spells it)
CONSTANT_ANSWER = "unknown"


class PluginCheckError(AssertionError):
    """A plugin broke the auditft plugin contract; the message says which plugin and how."""


def plugin_name(plugin: object) -> str:
    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    return str(name)


@contextmanager
def workdir(tmp_dir: Path | None) -> Iterator[Path]:
    """``tmp_dir`` when given (kept, for the author to inspect), else a folder removed afterwards."""
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        yield Path(tmp_dir)
        return
    path = Path(tempfile.mkdtemp(prefix="auditft-check-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def manager_with(plugin: object, name: str) -> PluginManager:
    """An isolated manager with ``plugin`` registered; hook signature errors and misspelled hooks
    are reported as plugin errors, exactly as ``--strict-plugins`` would. A built-in module is
    already registered (under its module name) and is checked as it is."""
    import pluggy

    from auditft.fixtures import isolated_plugin_manager
    from auditft.plugins import _drop_unknown_hooks

    pm = isolated_plugin_manager()
    if pm.is_registered(plugin) and pm.get_name(plugin) == name:
        return pm  # a built-in (``auditft.default_plugins...``), checked as registered by core
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:  # pluggy: name already registered
        raise PluginCheckError(f"plugin {name!r} could not be registered: {exc}") from exc
    except pluggy.PluginValidationError as exc:
        raise PluginCheckError(f"plugin {name!r} has an invalid hook implementation: {exc}") from exc
    try:
        _drop_unknown_hooks(pm, strict=True)
    except PluginError as exc:
        raise PluginCheckError(str(exc)) from exc
    return pm


def registered_entry(pm: PluginManager, what: str, name: str, kind: str) -> Entry:
    """The registry entry of ``kind``, which plugin ``name`` must be the one to provide."""
    try:
        registry = pm.audits if what == "audit" else pm.tuners
    except PluginError as exc:
        raise PluginCheckError(str(exc)) from exc
    entry = registry.get(kind)
    if entry is None:
        mine = [e.kind for e in registry if e.plugin == name]
        raise PluginCheckError(f"plugin {name!r} did not register {what} {kind!r} "
                               f"(it registered {mine or 'no ' + what + 's'})")
    if entry.plugin != name:
        raise PluginCheckError(f"{what} {kind!r} belongs to plugin {entry.plugin!r}, not {name!r}")
    return entry


def validated_options(entry: Entry, name: str, what: str, options: dict[str, Any] | None,
                      suite_dir: Path) -> BaseModel:
    """``options`` validated by the plugin's model, which must refuse an unknown key."""
    from pydantic import ValidationError

    from auditft.suite import plugin_options

    try:
        plugin_options(entry.options, {UNKNOWN_OPTION: 1}, suite_dir)
    except ValidationError:
        pass
    else:
        raise PluginCheckError(
            f"plugin {name!r}: options of {what} {entry.kind!r} accept the unknown key {UNKNOWN_OPTION!r}; "
            "set model_config = ConfigDict(extra='forbid') on the options model")
    try:
        return plugin_options(entry.options, options or {}, suite_dir)
    except ValidationError as exc:
        raise PluginCheckError(f"plugin {name!r}: {what} {entry.kind!r} rejects the options {options or {}}: "
                               f"{' '.join(str(exc).split())[:400]}") from exc


def checked_task(entry: Entry, name: str, what: str, task: str | None) -> str:
    """``task`` (default: the kind's first declared task), which the kind must declare."""
    task = task or entry.tasks[0]
    if task not in entry.tasks:
        raise PluginCheckError(f"plugin {name!r}: {what} {entry.kind!r} declares tasks {list(entry.tasks)}, "
                               f"not {task!r}")
    return task


# -- the protocols (auditft.protocols) -----------------------------------------------------------


def protocol_methods(protocol: type) -> list[str]:
    """The public methods a protocol class declares (its own and its protocol bases')."""
    from typing import Generic, Protocol

    names: list[str] = []
    for cls in reversed(protocol.__mro__):
        if cls in (object, Generic, Protocol):
            continue
        names += [n for n, value in vars(cls).items()
                  if not n.startswith("_") and callable(value) and n not in names]
    return names


def missing_methods(obj: object, protocol: type) -> list[str]:
    """The protocol's methods ``obj`` lacks or holds as something that cannot be called."""
    return [n for n in protocol_methods(protocol) if not callable(getattr(obj, n, None))]


def require_protocol(obj: object, protocol: type, *, name: str, what: str, kind: str,
                     methods: tuple[str, ...] | None = None) -> None:
    """``obj`` (what the registered factory returned) must satisfy ``protocol``; with
    ``methods``, only those of its methods are required (the ones about to be called)."""
    missing = [n for n in missing_methods(obj, protocol) if methods is None or n in methods]
    if methods is None and not missing and not isinstance(obj, protocol):
        # cannot happen while the protocols hold methods only; then name them all rather than none
        missing = protocol_methods(protocol)
    if missing:
        required = ", ".join(protocol_methods(protocol))
        raise PluginCheckError(
            f"plugin {name!r}: {what} {kind!r}: its factory returned a {type(obj).__name__} without the "
            f"method(s) {', '.join(missing)}; auditft.protocols.{protocol.__name__} needs {required}")


# -- the toy suite and the tiny models -----------------------------------------------------------


def toy_suite(directory: Path, task: str, model_dir: Path | str, tuner: dict[str, Any],
              audits: list[dict[str, Any]]) -> Path:
    """Toy data for ``task`` and a suite on them in ``directory`` (one short epoch)."""
    from auditft.fixtures import toy_classification_data, toy_generation_data, write_suite

    training = {"epochs": 1, "learning_rate": 0.02, "batch_size": 8, "max_length": 32, "eval_batch_size": 32,
                "logging_steps": 5}
    tuner = {"training": training, **tuner}
    if task == "generation":
        toy_generation_data(directory, copies=2)
        data = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7,
                "group_columns": ["group"]}
        return write_suite(directory / "suite.yaml", model_dir=model_dir, task="generation", data=data,
                           tuner=tuner, audits=audits, generation={"max_new_tokens": 4})
    toy_classification_data(directory, n_train=80, n_test=60)
    return write_suite(directory / "suite.yaml", model_dir=model_dir, tuner=tuner, audits=audits)


_TINY: dict[str, Path] = {}


def tiny_model(task: str) -> Path:
    """The tiny random model for ``task``, built once per process in a temporary directory."""
    from auditft.fixtures import tiny_causal_lm, tiny_classifier

    if task not in _TINY or not _TINY[task].exists():
        root = Path(tempfile.mkdtemp(prefix="auditft-tiny-"))
        _TINY[task] = (tiny_causal_lm if task == "generation" else tiny_classifier)(root / "model")
    return _TINY[task]
