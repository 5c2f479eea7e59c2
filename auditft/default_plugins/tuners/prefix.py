"""Tuner ``prefix``: prefix tuning (peft ``PrefixTuningConfig``).

``num_virtual_tokens`` trained key/value vectors are prepended to the attention of every
layer; the base weights stay frozen. With ``prefix_projection`` the prefixes are produced
by a two-layer MLP (hidden size ``encoder_hidden_size``) during training, which usually
trains more stably; peft then saves the projected prefixes, so the adapter on disk is the
same size either way.

For classification the new classifier head is trained and saved with the adapter (peft
adds ``classifier``/``score`` to ``modules_to_save`` for sequence classification).

transformers 5.24 renamed the encoder models' ``past_key_values`` argument to ``cache``
(the old name stays a deprecated alias until 5.40). peft 0.21 decides whether a classifier's
backbone can take prefixes by looking for ``past_key_values`` in its ``forward`` signature,
so prefix tuning a BERT classifier failed ("Model does not support past key values"). Where
the backbone takes ``cache`` instead, ``bridge_prefix_cache`` gives that one module instance
a ``forward`` that accepts ``past_key_values`` and passes it on as ``cache``: the same
prefixes reach the same attention layers, under either version. A backbone that takes
neither is refused by ``auditft validate`` (``check_model``).
"""

from __future__ import annotations

import inspect
import types
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.tuners import PeftTuner, task_type

if TYPE_CHECKING:
    from auditft.models import ResolvedModel
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


def _forward_with_prefix_cache(self: Any, *args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
    if past_key_values is not None:
        kwargs["cache"] = past_key_values
    return type(self).forward(self, *args, **kwargs)


def prefix_argument(backbone: Any) -> str | None:
    """Which argument of ``backbone.forward`` takes the prefixes: ``past_key_values``,
    ``cache`` (transformers >= 5.24), or ``None`` (prefix tuning cannot reach it)."""
    params = inspect.signature(backbone.forward).parameters
    return next((name for name in ("past_key_values", "cache") if name in params), None)


def bridge_prefix_cache(model: Any) -> Any:
    """Let peft's classification prefix path reach a backbone that names the argument
    ``cache``. Bound to the instance (a deep copy rebinds it to the copy)."""
    name = getattr(model, "transformer_backbone_name", None)
    if not name:
        return model
    backbone = model.base_model.get_submodule(name)
    if prefix_argument(backbone) == "cache":
        backbone.forward = types.MethodType(_forward_with_prefix_cache, backbone)
    return model


class PrefixTuner(PeftTuner):
    kind = "prefix"

    @staticmethod
    def check_model(base: ResolvedModel, task: str, labels: list[str]) -> str | None:
        """Why prefix tuning cannot work on this base for this task, or ``None``. peft feeds a
        classifier's prefixes to its backbone (the first child that is a pretrained model)."""
        if task != "classification":
            return None
        import transformers
        from transformers import PreTrainedModel

        from auditft.models import skeleton

        model = skeleton(base, task, labels)
        backbone = next((m for _, m in model.named_children() if isinstance(m, PreTrainedModel)), None)
        if backbone is None or prefix_argument(backbone) is None:
            import peft

            return (f"prefix tuning cannot reach {type(model).__name__} ({base.ref}): its backbone's forward takes "
                    f"neither past_key_values nor cache (peft {peft.__version__}, transformers "
                    f"{transformers.__version__}); use lora, ptuning or ia3")
        return None

    def adapt(self, model: Any) -> Any:
        return bridge_prefix_cache(model)

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
