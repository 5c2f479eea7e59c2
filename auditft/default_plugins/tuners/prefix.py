"""Tuner ``prefix``: prefix tuning (peft ``PrefixTuningConfig``).

``num_virtual_tokens`` trained key/value vectors are prepended to the attention of every
layer; the base weights stay frozen. With ``prefix_projection`` the prefixes are produced
by a two-layer MLP (hidden size ``encoder_hidden_size``) during training, which usually
trains more stably; peft then saves the projected prefixes, so the adapter on disk is the
same size either way.

For classification the new classifier head is trained and saved with the adapter (peft
adds ``classifier``/``score`` to ``modules_to_save`` for sequence classification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.tuners import PeftTuner, task_type

if TYPE_CHECKING:
    from auditft.registry import TunerRegistry


class PrefixOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_virtual_tokens: int = Field(default=10, ge=1, le=512)
    #: reparameterise the prefixes through an MLP while training
    prefix_projection: bool = False
    #: hidden size of that MLP (default: the model's hidden size); needs prefix_projection
    encoder_hidden_size: int | None = Field(default=None, ge=1)


def virtual_token_facts(model: Any) -> dict[str, Any]:
    config = model.peft_config[model.active_adapter]
    return {"num_virtual_tokens": int(config.num_virtual_tokens), "token_dim": int(config.token_dim)}


class PrefixTuner(PeftTuner):
    kind = "prefix"

    def peft_config(self, task: str, model: Any) -> Any:
        from peft import PrefixTuningConfig

        hidden = self.options.encoder_hidden_size
        if hidden is None:
            hidden = int(model.config.hidden_size)
        return PrefixTuningConfig(
            task_type=task_type(task),
            num_virtual_tokens=self.options.num_virtual_tokens,
            prefix_projection=self.options.prefix_projection,
            encoder_hidden_size=hidden,
        )

    def extra_facts(self, model: Any) -> dict[str, Any]:
        return {**virtual_token_facts(model), "prefix_projection": self.options.prefix_projection}


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "prefix",
        PrefixTuner,
        summary="prefix tuning (peft): trained key/value prefixes in every attention layer",
        tasks=("classification", "generation"),
        options=PrefixOptions,
        limitations=(
            "the prefixes use num_virtual_tokens positions of the attention window in every layer",
            "usually needs more steps and a higher learning rate than LoRA to match it",
            "needs a model whose attention accepts past key/values (BERT- and Llama-style models do)",
        ),
    )
