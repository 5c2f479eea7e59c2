"""Tuner ``lora``: low-rank adapters (peft) trained with the HF Trainer.

For classification the new classifier head is trained too (peft's ``modules_to_save``) and
saved with the adapter. Target modules default to peft's per-architecture mapping (BERT:
``query``/``value``; Llama: ``q_proj``/``v_proj``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.records import TuneResult
    from auditft.registry import TunerRegistry

META_FILE = "auditft_adapter.json"


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=8, ge=1, le=512)
    alpha: float = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | None = None
    #: extra modules trained in full and saved with the adapter (the classifier head always is)
    modules_to_save: list[str] | None = None


class LoraTuner:
    kind = "lora"

    def __init__(self, options: LoraOptions) -> None:
        self.options = options

    def tune(self, job: TuneJob) -> TuneResult:
        from peft import LoraConfig, TaskType, get_peft_model

        from auditft import training
        from auditft.models import load_classifier, load_tokenizer

        tokenizer = load_tokenizer(job.base)
        model = load_classifier(job.base, job.data.labels)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        config = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=self.options.r,
            lora_alpha=self.options.alpha,
            lora_dropout=self.options.dropout,
            target_modules=self.options.target_modules,
            modules_to_save=self.options.modules_to_save,
        )
        model = get_peft_model(model, config)
        max_length = job.training.max_length
        train_ds = training.classification_dataset(job.data.train, tokenizer, max_length)
        eval_ds = (training.classification_dataset(job.data.validation, tokenizer, max_length)
                   if job.data.validation else None)
        result = training.train(job, model, tokenizer, train_ds, eval_ds)
        model.save_pretrained(str(job.adapter_dir))  # safetensors: adapter + classifier head
        write_meta(job.adapter_dir, kind=self.kind, task=job.task, labels=job.data.labels,
                   base=job.base.ref)
        return result

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The quarantined adapter on its base, for inference."""
        from peft import PeftModel

        from auditft.models import load_classifier, load_tokenizer

        tokenizer = load_tokenizer(base)
        model = load_classifier(base, data.labels)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model = PeftModel.from_pretrained(model, str(adapter_dir))
        model.eval()
        return model, tokenizer


def write_meta(adapter_dir: Path, **meta: Any) -> None:
    """What the adapter is, next to its weights: enough to load it back without the suite."""
    path = Path(adapter_dir) / META_FILE
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "lora",
        LoraTuner,
        summary="LoRA low-rank adapters (peft) on the HF Trainer",
        tasks=("classification",),
        options=LoraOptions,
        limitations=("generation-task LoRA arrives with the tuners issue",),
    )
