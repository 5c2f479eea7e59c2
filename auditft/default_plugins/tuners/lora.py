"""Tuner ``lora``: low-rank adapters (peft) trained with the HF Trainer.

For classification the new classifier head is trained too (peft's ``modules_to_save``) and
saved with the adapter. Target modules default to peft's per-architecture mapping (BERT:
``query``/``value``; Llama: ``q_proj``/``v_proj``); ``target_modules: all-linear`` adapts
every linear layer but the output head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.tuners import PeftTuner, task_type

if TYPE_CHECKING:
    from auditft.registry import TunerRegistry


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=8, ge=1, le=512)
    alpha: float = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] | str | None = None
    #: extra modules trained in full and saved with the adapter (the classifier head always is)
    modules_to_save: list[str] | None = None


def lora_config(options: Any, task: str) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        task_type=task_type(task),
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        modules_to_save=options.modules_to_save,
    )


class LoraTuner(PeftTuner):
    kind = "lora"

    def peft_config(self, task: str, model: Any) -> Any:
        return lora_config(self.options, task)


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "lora",
        LoraTuner,
        summary="LoRA low-rank adapters (peft) on the HF Trainer",
        tasks=("classification", "generation"),
        options=LoraOptions,
    )
