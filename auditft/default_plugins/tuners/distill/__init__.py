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

The package: ``options``, ``teacher`` (fine-tuned or from a run, via core's ``RunAdapters``),
``student`` (block striding and initialisation), ``trainer`` (the loss), ``measure`` (teacher
against student) and ``tuner`` (``DistillTuner``). This module registers the plugin; torch and
transformers load only when a suite selects ``distill``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditft import hookimpl
from auditft.default_plugins.tuners.distill.measure import TIMING_PASSES, compare
from auditft.default_plugins.tuners.distill.options import DistillOptions
from auditft.default_plugins.tuners.distill.student import find_blocks, init_student, kept_layers
from auditft.default_plugins.tuners.distill.teacher import _merged, finetuned_teacher, run_teacher, teacher_run_dir
from auditft.default_plugins.tuners.distill.trainer import distillation_loss, distillation_trainer
from auditft.default_plugins.tuners.distill.tuner import KIND, TRAIN_SAMPLE, DistillTuner

if TYPE_CHECKING:
    from auditft.registry import TunerRegistry

__all__ = ["KIND", "TIMING_PASSES", "TRAIN_SAMPLE", "DistillOptions", "DistillTuner", "_merged",
           "auditft_register_tuners", "compare", "distillation_loss", "distillation_trainer", "find_blocks",
           "finetuned_teacher", "init_student", "kept_layers", "run_teacher", "teacher_run_dir"]


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
