"""``DistillTuner``: teacher, student, distillation training, the saved student and its facts."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.tuners.distill.measure import compare
from auditft.default_plugins.tuners.distill.student import init_student
from auditft.default_plugins.tuners.distill.teacher import (finetuned_teacher, run_adapters, run_teacher,
                                                            teacher_run_dir)
from auditft.default_plugins.tuners.distill.trainer import distillation_trainer
from auditft.errors import SuiteError
from auditft.adapter_meta import write_meta

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from auditft.data import SplitData
    from auditft.default_plugins.tuners.distill.options import DistillOptions
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.records import TuneResult

KIND = "distill"
#: rows of ``data.train`` used for accuracy / speed when there is no validation split
TRAIN_SAMPLE = 256


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
        adapters = None if options.teacher == "finetune" else run_adapters(job)
        if adapters is not None:
            teacher_run_dir(job, options, adapters)  # fail on a bad path before anything is trained
        tokenizer = load_tokenizer(job.base)
        train_ds, eval_ds = training.task_datasets(job, tokenizer)
        if adapters is None:
            teacher, teacher_facts = finetuned_teacher(job, options, tokenizer, train_ds, eval_ds)
        else:
            teacher, teacher_facts = run_teacher(job, options, adapters)
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

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData
             ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The distilled student (a complete model) and the base model's tokenizer."""
        from transformers import AutoModelForSequenceClassification

        from auditft.models import load_tokenizer, placement

        load_kwargs, move_to = placement(base, quantized=False)  # the run's precision and device
        model = AutoModelForSequenceClassification.from_pretrained(str(adapter_dir), use_safetensors=True,
                                                                   **load_kwargs)
        model = model.to(move_to) if move_to else model
        model.eval()
        return model, load_tokenizer(base)
