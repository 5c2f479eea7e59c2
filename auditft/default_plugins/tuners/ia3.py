"""Tuner ``ia3``: (IA)^3 (peft ``IA3Config``): learned per-channel scaling vectors.

Each targeted linear layer gets one trained vector that rescales its activations (its
input for feed-forward layers, its output otherwise); the base weights stay frozen. That is
far fewer parameters than LoRA. ``target_modules`` / ``feedforward_modules`` default to
peft's mapping for the architecture (BERT: ``key``, ``value``, ``output.dense``; Llama:
``k_proj``, ``v_proj``, ``down_proj``); ``feedforward_modules`` must be a subset of
``target_modules``.

For classification the new classifier head is trained and saved with the adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from auditft import hookimpl
from auditft.tuners import PeftTuner, task_type

if TYPE_CHECKING:
    from auditft.registry import TunerRegistry


class Ia3Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_modules: list[str] | str | None = None
    feedforward_modules: list[str] | str | None = None
    #: extra modules trained in full and saved with the adapter (the classifier head always is)
    modules_to_save: list[str] | None = None

    @model_validator(mode="after")
    def _feedforward_subset(self) -> Ia3Options:
        if self.feedforward_modules is not None and self.target_modules is None:
            raise ValueError("feedforward_modules needs target_modules (it must be a subset of them)")
        if isinstance(self.target_modules, list) and isinstance(self.feedforward_modules, list):
            extra = sorted(set(self.feedforward_modules) - set(self.target_modules))
            if extra:
                raise ValueError(f"feedforward_modules must be a subset of target_modules; not targeted: {extra}")
        return self


class Ia3Tuner(PeftTuner):
    kind = "ia3"

    def peft_config(self, task: str, model: Any) -> Any:
        from peft import IA3Config

        feedforward = self.options.feedforward_modules
        if self.options.target_modules is not None and feedforward is None:
            feedforward = []  # explicit targets, none of them feed-forward
        return IA3Config(
            task_type=task_type(task),
            target_modules=self.options.target_modules,
            feedforward_modules=feedforward,
            modules_to_save=self.options.modules_to_save,
        )

    def extra_facts(self, model: Any) -> dict[str, Any]:
        config = model.peft_config[model.active_adapter]
        return {"target_modules": sorted(config.target_modules or []),
                "feedforward_modules": sorted(config.feedforward_modules or [])}


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "ia3",
        Ia3Tuner,
        summary="(IA)^3 (peft): learned activation-scaling vectors, fewest trained parameters",
        tasks=("classification", "generation"),
        options=Ia3Options,
        limitations=(
            "default target modules exist only for architectures in peft's mapping; others need "
            "target_modules",
            "few trained parameters: usually needs a higher learning rate (1e-2 range) than LoRA",
        ),
    )
