"""Shared machinery for tuner plugins: the adapter's metadata file and a base class for the
peft-backed methods (``lora``, ``qlora``, ``prefix``, ``ptuning``, ``ia3``).

A peft tuner only says which ``PeftConfig`` it wants (and, for ``qlora``, how the base is
loaded); building the model for the task, tokenising, training through the HF Trainer,
saving safetensors and loading back for the audits are the same for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.adapter_meta import META_FILE, read_meta, write_meta  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from pydantic import BaseModel
    from transformers import PreTrainedModel

    from auditft.data import SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.records import TuneResult

def task_type(task: str) -> Any:
    from peft import TaskType

    return TaskType.SEQ_CLS if task == "classification" else TaskType.CAUSAL_LM


class PeftTuner(ABC):
    """Base for tuners that are one peft method. Subclasses set ``kind`` and implement
    ``peft_config(task, model)``; ``load_base`` may be overridden (``qlora`` quantises)."""

    kind = ""

    def __init__(self, options: BaseModel) -> None:
        #: the subclass's own options model (its fields are read by name)
        self.options: Any = options

    @abstractmethod
    def peft_config(self, task: str, model: PreTrainedModel) -> Any:
        """The ``PeftConfig`` for ``task`` (``model`` is the loaded base)."""

    def load_base(self, base: ResolvedModel, task: str, labels: list[str]) -> Any:
        from auditft.models import load_for_task

        return load_for_task(base, task, labels)

    def extra_facts(self, model: PreTrainedModel) -> dict[str, Any]:
        return {}

    def adapt(self, model: PreTrainedModel) -> Any:
        """Called on the peft model after it is built and after it is loaded back: the place
        to bridge a known gap between peft and transformers (``prefix`` does)."""
        return model

    def tune(self, job: TuneJob) -> TuneResult:
        from dataclasses import replace

        from peft import get_peft_model

        from auditft import training
        from auditft.models import load_tokenizer

        tokenizer = load_tokenizer(job.base)
        model = self.load_base(job.base, job.task, job.data.labels)
        model = self.adapt(get_peft_model(model, self.peft_config(job.task, model)))
        train_ds, eval_ds = training.task_datasets(job, tokenizer)
        result = training.train(job, model, tokenizer, train_ds, eval_ds)
        model.save_pretrained(str(job.adapter_dir))  # safetensors: adapter (+ trained head)
        write_meta(job.adapter_dir, kind=self.kind, task=job.task, labels=job.data.labels,
                   base=job.base.ref, format="peft")
        return replace(result, facts={**result.facts, **self.extra_facts(model)})

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The quarantined adapter on its base, for inference."""
        from peft import PeftModel

        from auditft.models import load_tokenizer

        tokenizer = load_tokenizer(base)
        model = self.load_base(base, data.task, data.labels)
        model = self.adapt(PeftModel.from_pretrained(model, str(adapter_dir)))
        model.eval()
        return model, tokenizer
