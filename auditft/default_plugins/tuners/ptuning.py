"""Tuner ``ptuning``: P-tuning (peft ``PromptEncoderConfig``).

``num_virtual_tokens`` soft-prompt embeddings are produced by a small prompt encoder (an
MLP, or an LSTM followed by an MLP) and prepended to the input embeddings; the base weights
stay frozen. peft saves the encoder's output (the virtual-token embeddings), not the
encoder, so the adapter on disk is ``num_virtual_tokens x hidden`` values.

For classification the new classifier head is trained and saved with the adapter (peft
adds ``classifier``/``score`` to ``modules_to_save`` for sequence classification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.default_plugins.tuners.prefix import virtual_token_facts
from auditft.tuners import PeftTuner, task_type

if TYPE_CHECKING:
    from auditft.registry import TunerRegistry


class PtuningOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_virtual_tokens: int = Field(default=10, ge=1, le=512)
    #: hidden size of the prompt encoder (default: the model's hidden size)
    encoder_hidden_size: int | None = Field(default=None, ge=1)
    encoder_reparameterization_type: Literal["MLP", "LSTM"] = "MLP"
    encoder_num_layers: int = Field(default=2, ge=1, le=8)
    encoder_dropout: float = Field(default=0.0, ge=0, lt=1)


class PtuningTuner(PeftTuner):
    kind = "ptuning"

    def peft_config(self, task: str, model: Any) -> Any:
        from peft import PromptEncoderConfig

        hidden = self.options.encoder_hidden_size
        if hidden is None:
            hidden = int(model.config.hidden_size)
        return PromptEncoderConfig(
            task_type=task_type(task),
            num_virtual_tokens=self.options.num_virtual_tokens,
            encoder_hidden_size=hidden,
            encoder_reparameterization_type=self.options.encoder_reparameterization_type,
            encoder_num_layers=self.options.encoder_num_layers,
            encoder_dropout=self.options.encoder_dropout,
        )

    def extra_facts(self, model: Any) -> dict[str, Any]:
        return {**virtual_token_facts(model),
                "prompt_encoder": self.options.encoder_reparameterization_type}


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "ptuning",
        PtuningTuner,
        summary="P-tuning (peft): soft-prompt embeddings from a trained prompt encoder",
        tasks=("classification", "generation"),
        options=PtuningOptions,
        limitations=(
            "the virtual tokens use num_virtual_tokens positions of max_length / the context window",
            "only the input embeddings are steered: usually weaker than LoRA on small models",
        ),
    )
