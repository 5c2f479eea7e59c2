"""Tuner ``distill``: knowledge distillation of a classifier into a shallower student.

1. **Teacher.** ``teacher: finetune`` (default) fine-tunes the whole base model as a
   classifier on ``data.train`` with the suite's training settings (``teacher_epochs`` /
   ``teacher_learning_rate`` override them), checkpointed under ``work/teacher``;
   ``teacher: run:<dir>`` uses the adapter of a finished auditft run instead, loaded through
   that run's own tuner (any registered kind) on this suite's base model.
2. **Student.** A copy of the teacher's architecture with fewer transformer blocks
   (``student_layers``, default ``ceil(n / 2)``), initialised DistilBERT-style from the
   teacher: embeddings, pooler and classifier head copied, and blocks 0, 2, 4, ... of the
   teacher copied into the student's blocks (evenly strided for other sizes).
3. **Training.** The student is trained through the shared HF Trainer plumbing with
   ``loss = alpha * KL(softmax(t / T) || softmax(s / T)) * T^2 + (1 - alpha) * CE(s, y)``.

The "adapter" is the whole student (``model.safetensors`` + ``config.json``); ``load``
reads it back with the base model's tokenizer. Facts: parameter counts, compression ratio,
teacher/student accuracy on the validation split and the inference speed-up measured side by
side on the same batches.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from auditft import hookimpl
from auditft.errors import ModelError, SuiteError
from auditft.tuners import META_FILE, read_meta, write_meta

if TYPE_CHECKING:
    from auditft.data import Example, SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.records import TuneResult
    from auditft.registry import TunerRegistry

KIND = "distill"
#: rows of ``data.train`` used for accuracy / speed when there is no validation split
TRAIN_SAMPLE = 256
#: timed passes per model; the fastest counts (the first pass also warms up)
TIMING_PASSES = 3


class DistillOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: ``finetune`` (fine-tune the base in this run) or ``run:<finished run directory>``
    teacher: str = "finetune"
    #: softmax temperature of the soft targets
    temperature: float = Field(default=2.0, gt=0)
    #: weight of the distillation (KL) term; ``1 - alpha`` weighs cross-entropy on the labels
    alpha: float = Field(default=0.5, ge=0, le=1)
    #: transformer blocks of the student (default: half the teacher's, rounded up)
    student_layers: int | None = Field(default=None, ge=1)
    #: epochs of the teacher fine-tuning (default: ``tuner.training.epochs``)
    teacher_epochs: float | None = Field(default=None, gt=0)
    #: learning rate of the teacher fine-tuning (default: ``tuner.training.learning_rate``)
    teacher_learning_rate: float | None = Field(default=None, gt=0)

    @field_validator("teacher")
    @classmethod
    def _teacher(cls, value: str) -> str:
        if value == "finetune":
            return value
        if value.startswith("run:") and value[4:].strip():
            return value
        raise ValueError("use 'finetune' or 'run:<path to a finished auditft run directory>'")


# -- the loss -------------------------------------------------------------------------------


def distillation_loss(student_logits: Any, teacher_logits: Any, labels: Any, *,
                      temperature: float, alpha: float) -> Any:
    """``alpha * KL(p_t || p_s) * T^2 + (1 - alpha) * CE(student, labels)``, batch means.

    ``p = softmax(logits / T)``; the ``T^2`` keeps the soft-target gradients on the scale of
    the hard-label ones (Hinton et al., 2015)."""
    import torch.nn.functional as F

    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)
    ce = F.cross_entropy(student_logits.float(), labels)
    return alpha * kl + (1.0 - alpha) * ce


def distillation_trainer(teacher: Any, *, temperature: float, alpha: float) -> type:
    """A ``transformers.Trainer`` subclass whose loss distils ``teacher`` into the model.

    The teacher stays in eval mode, is moved to the student's device on first use and runs
    under ``torch.no_grad``; it is not part of the trained model, so checkpoints hold the
    student only."""
    import torch
    from transformers import Trainer

    teacher.eval()
    teacher.requires_grad_(False)

    class DistillationTrainer(Trainer):
        loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides by GA steps

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs["labels"]
            features = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**features)
            device = outputs.logits.device
            if next(teacher.parameters()).device != device:
                teacher.to(device)
            with torch.no_grad():
                teacher_logits = teacher(**features).logits
            loss = distillation_loss(outputs.logits, teacher_logits, labels,
                                     temperature=temperature, alpha=alpha)
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer


# -- the student ----------------------------------------------------------------------------


def find_blocks(model: Any) -> tuple[str, Any]:
    """``(name, ModuleList)`` of the transformer blocks (the shared finder), or a clear error."""
    from auditft.default_plugins.tuners._local import find_blocks as find

    found = find(model)
    if found is None:
        raise ModelError(f"distill: cannot find the transformer blocks of {type(model).__name__} "
                         "(no nn.ModuleList of length config.num_hidden_layers)")
    return found


def kept_layers(n: int, k: int) -> list[int]:
    """Teacher blocks copied into a ``k``-block student: every other block (0, 2, 4, ...)
    when ``k == ceil(n / 2)``, otherwise evenly strided from block 0."""
    if not 1 <= k < n:
        raise ValueError(f"the student needs between 1 and {n - 1} blocks, not {k}")
    if k == math.ceil(n / 2):
        return list(range(0, n, 2))
    return [i * n // k for i in range(k)]


def init_student(teacher: Any, student_layers: int | None = None) -> tuple[Any, list[int]]:
    """A shallower copy of ``teacher`` (same class and config, fewer blocks) initialised from
    the teacher: every weight outside the block list is copied (embeddings, pooler, head),
    and student block ``i`` gets teacher block ``kept[i]``. Returns ``(student, kept)``."""
    import torch

    prefix, _ = find_blocks(teacher)
    n = int(teacher.config.num_hidden_layers)
    k = student_layers if student_layers is not None else math.ceil(n / 2)
    kept = kept_layers(n, k)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = k
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == n:  # per-layer attention kinds
        config.layer_types = [layer_types[i] for i in kept]
    student = type(teacher)(config)
    source = teacher.state_dict()
    mapped = {}
    block = prefix + "."
    for key in student.state_dict():
        teacher_key = key
        if key.startswith(block):
            index, rest = key[len(block):].split(".", 1)
            teacher_key = f"{block}{kept[int(index)]}.{rest}"
        mapped[key] = source[teacher_key].detach().clone()
    with torch.no_grad():
        student.load_state_dict(mapped, strict=True)
    student.to(next(teacher.parameters()).device)
    return student, kept


# -- measuring ------------------------------------------------------------------------------


def _batches(examples: list[Example], tokenizer: Any, max_length: int, batch_size: int) -> list[dict[str, Any]]:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    batches = []
    for start in range(0, len(order), batch_size):
        ids = order[start:start + batch_size]
        enc = tokenizer([examples[i].text for i in ids], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
        batches.append({"ids": ids, "enc": dict(enc)})
    return batches


def _pass(model: Any, batches: list[dict[str, Any]], n: int) -> tuple[Any, float]:
    import numpy as np
    import torch

    device = next(model.parameters()).device
    predictions = np.zeros(n, dtype=np.int64)
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            enc = {k: v.to(device) for k, v in batch["enc"].items()}
            predictions[batch["ids"]] = model(**enc).logits.argmax(-1).cpu().numpy()
    return predictions, time.perf_counter() - started


def compare(teacher: Any, student: Any, tokenizer: Any, examples: list[Example], *, max_length: int,
            batch_size: int, passes: int = TIMING_PASSES) -> dict[str, Any]:
    """Accuracy of both models on ``examples`` and their inference time on the same batches,
    timed alternately in this process (the fastest of ``passes`` per model)."""
    import numpy as np

    teacher.eval()
    student.eval()
    labels = np.array([ex.label for ex in examples], dtype=np.int64)
    batches = _batches(examples, tokenizer, max_length, batch_size)
    times: dict[str, list[float]] = {"teacher": [], "student": []}
    predictions: dict[str, Any] = {}
    for _ in range(max(passes, 1)):
        for name, model in (("teacher", teacher), ("student", student)):
            predicted, seconds = _pass(model, batches, len(examples))
            predictions[name] = predicted
            times[name].append(seconds)
    teacher_s, student_s = min(times["teacher"]), min(times["student"])
    teacher_acc = float((predictions["teacher"] == labels).mean()) if len(labels) else float("nan")
    student_acc = float((predictions["student"] == labels).mean()) if len(labels) else float("nan")
    return {
        "teacher_accuracy": round(teacher_acc, 4),
        "student_accuracy": round(student_acc, 4),
        "retained_accuracy": round(student_acc / teacher_acc, 4) if teacher_acc > 0 else None,
        "teacher_inference_seconds": round(teacher_s, 4),
        "student_inference_seconds": round(student_s, 4),
        "speed_up": round(teacher_s / student_s, 3) if student_s > 0 else None,
    }


# -- teachers -------------------------------------------------------------------------------


def _merged(model: Any) -> tuple[Any, str]:
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


def finetuned_teacher(job: TuneJob, options: DistillOptions, tokenizer: Any, train_ds: Any,
                      eval_ds: Any) -> tuple[Any, dict[str, Any]]:
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


def teacher_run_dir(job: TuneJob, options: DistillOptions) -> Path:
    """The run directory named by ``teacher: run:<dir>``, checked: it exists, is finished,
    holds an adapter for this task, labels and base model. Relative paths resolve against
    the suite file, like data paths."""
    text = options.teacher[4:].strip()
    run = job.suite.resolve(text)
    where = f"run:{text}"
    if not run.is_dir():
        shown = "" if str(run) == text else f" ({run})"
        raise _teacher_error(job, f"{where}: no such run directory{shown}")
    meta_path = run / "adapter" / META_FILE
    if not meta_path.is_file():
        raise _teacher_error(job, f"{where}: not an auditft run directory with an adapter "
                                  f"(no adapter/{META_FILE})")
    if not (run / "manifest.json").is_file() or not (run / "suite.yaml").is_file():
        raise _teacher_error(job, f"{where}: the run is not finished (no manifest.json); "
                                  "only a completed run can teach")
    meta = read_meta(run / "adapter")
    if meta.get("task") != "classification":
        raise _teacher_error(job, f"{where}: the run's task is {meta.get('task')!r}; "
                                  "distill needs a classification run")
    if list(meta.get("labels") or []) != list(job.data.labels):
        raise _teacher_error(job, f"{where}: the run's labels {meta.get('labels')} differ from "
                                  f"this suite's {job.data.labels}")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    recorded = (manifest.get("base_model") or {}).get("weights_sha256")
    if recorded and job.base.weights_sha256 and recorded != job.base.weights_sha256:
        raise _teacher_error(job, f"{where}: the run was tuned on other base weights "
                                  f"({(manifest.get('base_model') or {}).get('ref')!r}) than "
                                  f"model.base {job.base.ref!r}")
    return run


def run_teacher(job: TuneJob, options: DistillOptions) -> tuple[Any, dict[str, Any]]:
    """The adapter of a finished run, loaded through that run's own tuner plugin."""
    import yaml
    from pydantic import ValidationError

    from auditft.plugins import make_plugin_manager

    run = teacher_run_dir(job, options)
    where = f"run:{options.teacher[4:].strip()}"
    meta = read_meta(run / "adapter")
    kind = meta.get("kind")
    pm = make_plugin_manager()
    entry = pm.tuners.get(str(kind))
    if entry is None:
        hint = pm.failure_for(str(kind)) or "is its plugin installed?"
        raise _teacher_error(job, f"{where}: the run's tuner {kind!r} is not available ({hint})")
    suite = yaml.safe_load((run / "suite.yaml").read_text(encoding="utf-8")) or {}
    raw_options = ((suite.get("tuner") or {}).get("options")) or {}
    try:
        tuner_options = entry.options.model_validate(raw_options)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _teacher_error(job, f"{where}: the run's tuner options no longer validate: "
                                  f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    model, _ = entry.factory(tuner_options).load(job.base, run / "adapter", job.data)
    model, init = _merged(model)
    report_path = run / "report.json"
    seconds = None
    if report_path.is_file():
        seconds = (json.loads(report_path.read_text(encoding="utf-8")).get("tuner") or {}).get("seconds")
    return model, {"teacher": f"run:{run.resolve()}", "teacher_kind": kind, "teacher_run": run.name,
                   "teacher_seconds": seconds, "student_init": init}


# -- the tuner ------------------------------------------------------------------------------


class DistillTuner:
    kind = KIND

    def __init__(self, options: DistillOptions) -> None:
        self.options = options
        #: the trained student of the last ``tune`` (in memory), for callers and tests
        self.student: Any = None

    def tune(self, job: TuneJob) -> TuneResult:
        from auditft import training
        from auditft.models import load_tokenizer

        options = self.options
        if job.task != "classification":
            raise SuiteError(f"{job.suite.source}: tuner.kind: distill supports classification only")
        if options.teacher != "finetune":
            teacher_run_dir(job, options)  # fail on a bad path before anything is trained
        tokenizer = load_tokenizer(job.base)
        train_ds, eval_ds = training.task_datasets(job, tokenizer)
        if options.teacher == "finetune":
            teacher, teacher_facts = finetuned_teacher(job, options, tokenizer, train_ds, eval_ds)
        else:
            teacher, teacher_facts = run_teacher(job, options)
        n = int(teacher.config.num_hidden_layers)
        k = options.student_layers if options.student_layers is not None else math.ceil(n / 2)
        if not 1 <= k < n:
            raise SuiteError(f"{job.suite.source}: tuner.options.student_layers: the teacher has {n} "
                             f"transformer blocks; the student needs 1 to {n - 1}, not {k}")
        teacher.eval()
        student, kept = init_student(teacher, k)
        trainer_class = distillation_trainer(teacher, temperature=options.temperature, alpha=options.alpha)
        result = training.train(job, student, tokenizer, train_ds, eval_ds, trainer_class=trainer_class)
        student.eval()
        self.student = student
        adapter_dir = Path(job.adapter_dir)
        student.save_pretrained(str(adapter_dir))  # model.safetensors + config.json
        write_meta(adapter_dir, kind=KIND, task=job.task, labels=job.data.labels, base=job.base.ref,
                   format="distilled-model", student_layers=k, teacher_layers=n, kept_layers=kept,
                   teacher=teacher_facts["teacher"], temperature=options.temperature, alpha=options.alpha)
        examples, measured_on = job.data.validation, "validation"
        if not examples:
            examples, measured_on = job.data.train[:TRAIN_SAMPLE], "train sample"
        teacher_params, student_params = training.count_parameters(teacher)[1], training.count_parameters(student)[1]
        facts = {
            **result.facts,
            **teacher_facts,
            "teacher_parameters": teacher_params,
            "student_parameters": student_params,
            "compression_ratio": round(teacher_params / student_params, 3),
            "teacher_layers": n,
            "student_layers": k,
            "kept_layers": kept,
            "temperature": options.temperature,
            "alpha": options.alpha,
            **compare(teacher, student, tokenizer, examples, max_length=job.training.max_length,
                      batch_size=job.training.eval_batch_size),
            "measured_on": f"{measured_on} ({len(examples)} rows)",
        }
        return replace(result, trainable_parameters=student_params, total_parameters=student_params,
                       facts=facts)

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The distilled student (a complete model) and the base model's tokenizer."""
        from transformers import AutoModelForSequenceClassification

        from auditft.models import load_tokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(adapter_dir), use_safetensors=True)
        model.eval()
        return model, load_tokenizer(base)


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        KIND,
        DistillTuner,
        summary="knowledge distillation into a shallower student initialised from every other "
                "teacher block (DistilBERT-style); teacher fine-tuned in the run or taken from a finished run",
        tasks=("classification",),
        options=DistillOptions,
        limitations=(
            "classification only: distillation of generation models is not offered",
            "the student keeps the teacher's width, vocabulary and tokenizer; only depth shrinks",
            "the 'adapter' is the whole student model, not a small delta on the base",
            "teacher: run:<dir> needs a finished classification run on the same base weights and labels",
            "speed_up is measured on this machine in the tuning process; it varies with hardware and load",
        ),
    )
