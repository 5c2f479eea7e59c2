"""The teacher: the base fine-tuned in this run (``finetune``) or a finished run's adapter
(``run:<dir>``), loaded through core's ``RunAdapters`` service with the command's plugins."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import SuiteError

if TYPE_CHECKING:
    from datasets import Dataset
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from auditft.default_plugins.tuners.distill.options import DistillOptions
    from auditft.jobs import AdapterLoader, TuneJob


def _merged(model: nn.Module) -> tuple[nn.Module, str]:
    """A plain transformers model equivalent to ``model`` (a peft adapter is merged in) and
    how the student can be initialised from it."""
    if hasattr(model, "merge_and_unload"):
        try:
            return model.merge_and_unload(), "adapter merged into the teacher's weights"
        except (AttributeError, NotImplementedError, ValueError, TypeError):
            pass
    if hasattr(model, "get_base_model"):  # e.g. prompt tuning: nothing to merge
        return model, "teacher base weights (the adapter cannot be merged)"
    return model, "teacher weights"


def finetuned_teacher(job: TuneJob, options: DistillOptions, tokenizer: PreTrainedTokenizerBase,
                      train_ds: Dataset | None, eval_ds: Dataset | None) -> tuple[nn.Module, dict[str, Any]]:
    """Full fine-tuning of the base as a classifier, checkpointed under ``work/teacher``.

    The finished teacher is kept in ``work/teacher/model`` so a resumed run that was killed
    while distilling does not train it again."""
    from auditft import training
    from auditft.models import load_classifier

    work = Path(job.work_dir) / "teacher"
    saved = work / "model"
    record = work / "teacher.json"
    if (saved / "config.json").is_file() and record.is_file():
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(str(saved), use_safetensors=True)
        return model, json.loads(record.read_text(encoding="utf-8"))
    spec = job.training
    update: dict[str, Any] = {}
    if options.teacher_epochs is not None:
        update["epochs"] = options.teacher_epochs
        update["max_steps"] = None  # an epoch count of its own; max_steps would cap it
    if options.teacher_learning_rate is not None:
        update["learning_rate"] = options.teacher_learning_rate
    teacher_job = replace(job, work_dir=work, training=spec.model_copy(update=update) if update else spec,
                          resume=job.resume or (work / "checkpoints").is_dir())
    work.mkdir(parents=True, exist_ok=True)
    model = load_classifier(job.base, job.data.labels)
    result = training.train(teacher_job, model, tokenizer, train_ds, eval_ds)
    facts = {"teacher": "finetune", "teacher_seconds": result.seconds, "teacher_steps": result.steps,
             "teacher_loss_curve": [[int(s), float(v)] for s, v in result.loss_curve],
             "student_init": "teacher weights"}
    tmp = work / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(saved, ignore_errors=True)
    tmp.rename(saved)
    record.write_text(json.dumps(facts), encoding="utf-8")
    shutil.rmtree(work / "checkpoints", ignore_errors=True)  # the saved teacher replaces them
    return model, facts


def _teacher_error(job: TuneJob, message: str) -> SuiteError:
    return SuiteError(f"{job.suite.source}: tuner.options.teacher: {message}")


def run_adapters(job: TuneJob) -> AdapterLoader:
    """The job's service; a job built outside a command (the author kit) gets one on the
    installed plugins."""
    if job.adapters is not None:
        return job.adapters
    from auditft.plugins import default_plugins
    from auditft.run_adapters import RunAdapters

    return RunAdapters(default_plugins())


def teacher_run_dir(job: TuneJob, options: DistillOptions, adapters: AdapterLoader) -> Path:
    """The run directory named by ``teacher: run:<dir>``, checked: it exists, is finished,
    holds an adapter for this task, labels and base model. Relative paths resolve against
    the suite file, like data paths."""
    from auditft.run_adapters import RunAdapterError

    text = options.teacher[4:].strip()
    run = job.suite.resolve(text)
    where = f"run:{text}"
    if not run.is_dir():  # named here: the service does not know how the suite spelled it
        shown = "" if str(run) == text else f" ({run})"
        raise _teacher_error(job, f"{where}: no such run directory{shown}")
    try:
        meta = adapters.finished(run)
        if meta.get("task") != "classification":
            raise _teacher_error(job, f"{where}: the run's task is {meta.get('task')!r}; "
                                      "distill needs a classification run")
        adapters.check_fits(run, meta, job.base, job.data)
    except RunAdapterError as exc:
        raise _teacher_error(job, f"{where}: {exc}") from None
    return run


def run_teacher(job: TuneJob, options: DistillOptions, adapters: AdapterLoader) -> tuple[nn.Module, dict[str, Any]]:
    """The adapter of a finished run, loaded through that run's own tuner plugin."""
    from auditft.run_adapters import RunAdapterError

    run = teacher_run_dir(job, options, adapters)
    try:
        loaded = adapters.load(run, job.base, job.data)
    except RunAdapterError as exc:
        raise _teacher_error(job, f"run:{options.teacher[4:].strip()}: {exc}") from None
    model, init = _merged(loaded.model)
    return model, {"teacher": f"run:{run.resolve()}", "teacher_kind": loaded.kind, "teacher_run": loaded.run_name,
                   "teacher_seconds": loaded.tuning_seconds, "student_init": init}
