"""``check_tuner``: the contract core relies on from a tuner plugin, exercised by one short
epoch on the tiny random model and a load of the adapter it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.conformance.common import (
    DEFAULT_TIMEOUT,
    PICKLE_SUFFIXES,
    PluginCheckError,
    checked_task,
    manager_with,
    plugin_name,
    registered_entry,
    require_protocol,
    tiny_model,
    toy_suite,
    validated_options,
    workdir,
)
from auditft.conformance.guards import deadline, no_exit
from auditft.records import TuneResult, is_finite

if TYPE_CHECKING:
    from auditft.context import Prepared
    from auditft.jobs import Tuner


def check_tuner(plugin: object, kind: str, *, task: str | None = None, options: dict[str, Any] | None = None,
                name: str | None = None, training: dict[str, Any] | None = None, require_safetensors: bool = True,
                tmp_dir: Path | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> TuneResult:
    """Check that ``plugin`` provides a working tuner ``kind``: it registers cleanly, its options
    reject unknown keys, its factory returns an ``auditft.protocols.Tuner`` (``tune`` and
    ``load``), ``tune`` on the tiny random model (1 epoch of toy data) returns a ``TuneResult``
    and writes safetensors (never pickles) into ``adapter_dir``, and ``load`` gives a model whose
    predictions (classification) or answers (generation) core can use. ``tune`` and the load
    each run under ``timeout`` seconds (default 600; ``None``: no limit), and ``sys.exit`` or a
    ``KeyboardInterrupt`` raised by the tuner fails the check instead of ending the test run."""
    from auditft.jobs import TuneJob
    from auditft.plan import prepare
    from auditft.protocols import Tuner
    from auditft.seeding import seed_everything

    name = name or plugin_name(plugin)
    pm = manager_with(plugin, name)
    entry = registered_entry(pm, "tuner", name, kind)
    task = checked_task(entry, name, "tuner", task)
    with workdir(tmp_dir) as work:
        validated_options(entry, name, "tuner", options, work)
        tuner_spec: dict[str, Any] = {"kind": kind, "options": options or {}}
        if training:
            tuner_spec["training"] = {"epochs": 1, "learning_rate": 0.02, "batch_size": 8, "max_length": 32,
                                      "eval_batch_size": 32, "logging_steps": 5, **training}
        suite_path = toy_suite(work, task, tiny_model(task), tuner_spec, [{"kind": "accuracy"}])
        prepared = prepare(suite_path, pm)
        adapter_dir, work_dir = work / "adapter", work / "work"
        adapter_dir.mkdir()
        work_dir.mkdir()
        with no_exit(name, "tuner", kind, step="its factory"):
            tuner = entry.factory(prepared.tuner_options)
        # ``tune`` now; ``load`` is required once the adapter it wrote has been checked
        require_protocol(tuner, Tuner, name=name, what="tuner", kind=kind, methods=("tune",))
        seed_everything(prepared.suite.seed)
        try:
            with deadline(name, "tuner", kind, timeout, "tune"):
                result = tuner.tune(TuneJob.for_suite(prepared.suite, prepared.base, prepared.data,
                                                      prepared.tuner_options, adapter_dir=adapter_dir,
                                                      work_dir=work_dir))
        except PluginCheckError:
            raise
        except Exception as exc:
            raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} failed on the tiny model: "
                                   f"{type(exc).__name__}: {exc}") from exc
        _check_tune_result(result, name, kind)
        _check_adapter_files(adapter_dir, name, kind, require_safetensors)
        require_protocol(tuner, Tuner, name=name, what="tuner", kind=kind)
        with deadline(name, "tuner", kind, timeout, "load"):
            _check_load(tuner, prepared, adapter_dir, name, kind)
    return result


def _check_tune_result(result: object, name: str, kind: str) -> None:
    """A ``TuneResult`` with positive trainable parameters, finite losses and JSON facts."""
    if not isinstance(result, TuneResult):
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} returned {type(result).__name__}, not TuneResult")
    if not (isinstance(result.trainable_parameters, int) and result.trainable_parameters > 0):
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} reports {result.trainable_parameters!r} "
                               "trainable parameters")
    if result.total_parameters < result.trainable_parameters:
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} reports fewer total than trainable parameters")
    if not all(is_finite(loss) for _, loss in result.loss_curve):
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} loss curve has non-finite values")
    try:
        json.dumps(result.to_dict())
    except (TypeError, ValueError) as exc:
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} facts are not JSON-serialisable: {exc}") from exc


def _check_adapter_files(adapter_dir: Path, name: str, kind: str, require_safetensors: bool) -> None:
    """No pickled weights (auditft never loads them) and, unless waived, some safetensors."""
    files = [p for p in adapter_dir.rglob("*") if p.is_file()]
    pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} wrote pickled weights {pickles}; "
                               "save safetensors (auditft never loads pickles)")
    if require_safetensors and not any(p.suffix == ".safetensors" for p in files):
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} wrote no .safetensors file into adapter_dir "
                               f"(found {sorted(p.name for p in files) or 'nothing'})")


def _check_load(tuner: Tuner, prepared: Prepared, adapter_dir: Path, name: str, kind: str) -> None:
    """``load`` of the adapter gives a model core can predict with (or answer with)."""
    from auditft.inference import ModelSession

    # the suite's inference settings, as core serves the adapter (the toy generation suite
    # answers in 4 new tokens; a classifier's session never generates)
    session = ModelSession.for_suite(prepared.suite, prepared.base, prepared.data, tuner=tuner,
                                     adapter_dir=adapter_dir)
    try:
        if prepared.suite.task == "generation":
            answers = session.generate([ex.text for ex in prepared.data.test[:2]])
            ok = len(answers) == 2 and all(isinstance(a, str) for a in answers)
        else:
            proba = session.adapter_proba("test")
            ok = proba.shape == (len(prepared.data.test), len(prepared.data.labels))
    except Exception as exc:
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} load() of its own adapter failed: "
                               f"{type(exc).__name__}: {exc}") from exc
    if not ok:
        raise PluginCheckError(f"plugin {name!r}: tuner {kind!r} load() gives a model with unusable outputs")
