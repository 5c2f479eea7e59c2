"""Tuner ``qlora``: LoRA on a base whose linear layers are stored in 4-bit NF4 (bitsandbytes).

The base model is loaded through ``auditft.models.load_for_task`` with a
``BitsAndBytesConfig`` (NF4, float32 compute, optional double quantisation of the
quantisation constants); every linear layer but the output side (classifier head, BERT
pooler, ``score``, ``lm_head``) becomes a ``bitsandbytes.nn.Linear4bit``. LoRA adapters
(same options as ``lora``) are then trained on top in float32, and only they (plus the
classifier head) are saved. Loading the adapter back quantises the base the same way, so
the audits measure the model that would ship.

``peft.prepare_model_for_kbit_training`` is applied (without gradient checkpointing): it
freezes the base and casts the non-quantised float16/bfloat16 parameters (norms,
embeddings) to float32 for stable training; the 4-bit weights stay packed ``uint8``, so the
memory saving is kept (measured: the footprint is the same before and after it).

Device: bitsandbytes places the model itself (the GPU when CUDA is available, else the
CPU backend); nothing here names a device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from auditft import hookimpl
from auditft.default_plugins.tuners.lora import LoraOptions, lora_config
from auditft.tuners import PeftTuner

if TYPE_CHECKING:
    from auditft.models import ResolvedModel
    from auditft.registry import TunerRegistry

#: modules kept in full precision: trained heads and the layers feeding them. Patterns
#: follow transformers' ``should_convert_module`` (prefix, regex with a module boundary,
#: or suffix), so ``.*pooler`` matches ``bert.pooler.dense``.
SKIP_MODULES = ["classifier", "score", "lm_head", r".*pooler"]


class QloraOptions(LoraOptions):
    model_config = ConfigDict(extra="forbid")

    #: quantise the quantisation constants too (~0.4 bit/parameter less; QLoRA paper)
    double_quant: bool = True
    #: recompute activations in the backward pass (peft's default for k-bit training): with
    #: the base in 4 bits, activations are most of the peak memory (benchmark P5: peak RSS
    #: 0.59 of lora's with it, 1.00 without, for about 37% more time per step)
    gradient_checkpointing: bool = True


def quantization_config(double_quant: bool) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.float32,
        bnb_4bit_use_double_quant=double_quant,
        llm_int8_skip_modules=list(SKIP_MODULES),
    )


def count_4bit(model: Any) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def fp32_bytes(model: Any) -> int:
    """What ``get_memory_footprint()`` would report for the same model in float32: every
    parameter (4-bit ones at their original shape) and buffer at 4 bytes an element."""
    import math

    total = 0
    for param in model.parameters():
        state = getattr(param, "quant_state", None)
        total += 4 * (math.prod(state.shape) if state is not None else param.numel())
    total += sum(4 * b.numel() if b.is_floating_point() else b.numel() * b.element_size()
                 for b in model.buffers())
    return int(total)


class QloraTuner(PeftTuner):
    kind = "qlora"

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self._footprint: dict[str, int] = {}

    def load_base(self, base: ResolvedModel, task: str, labels: list[str]) -> Any:
        from peft import prepare_model_for_kbit_training

        from auditft.models import load_for_task

        model = load_for_task(base, task, labels,
                              quantization_config=quantization_config(self.options.double_quant))
        self._footprint = {"memory_footprint_bytes": int(model.get_memory_footprint()),
                           "fp32_footprint_bytes": fp32_bytes(model),
                           "quantized_linear_layers": count_4bit(model)}
        release_checkpoint_pages(model)
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=self.options.gradient_checkpointing)

    def peft_config(self, task: str, model: Any) -> Any:
        return lora_config(self.options, task)

    def extra_facts(self, model: Any) -> dict[str, Any]:
        facts: dict[str, Any] = {"quantization": "nf4" + (" + double quant" if self.options.double_quant else ""),
                                 "compute_dtype": "float32", **self._footprint}
        if self._footprint.get("fp32_footprint_bytes"):
            facts["footprint_ratio"] = round(facts["memory_footprint_bytes"] / facts["fp32_footprint_bytes"], 4)
        return facts


def release_checkpoint_pages(model: Any) -> None:
    """Give the unquantised tensors (embeddings, norms, heads) their own memory.

    They are loaded as views of the memory-mapped checkpoint, which keeps the whole mapping
    alive, and quantisation has read every page of it: without this, the full-precision file
    stays resident (about 300 MB for SmolLM2-135M) and 4-bit saves nothing in practice.
    """
    import gc

    import bitsandbytes as bnb
    import torch

    with torch.no_grad():
        for module in model.modules():
            for parameter in module.parameters(recurse=False):
                if not isinstance(parameter, bnb.nn.Params4bit):
                    parameter.data = parameter.data.clone()
            for name, buffer in list(module.named_buffers(recurse=False)):
                if buffer is not None:
                    module._buffers[name] = buffer.clone()
    gc.collect()


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "qlora",
        QloraTuner,
        summary="QLoRA: LoRA adapters on a 4-bit NF4 base (bitsandbytes, peft)",
        tasks=("classification", "generation"),
        options=QloraOptions,
        limitations=(
            "needs bitsandbytes; on CPU its 4-bit kernels are slow (dequantise per matmul), the "
            "memory saving is the point",
            "the audited model is the quantised base plus adapter: quality may differ from the same "
            "adapter on a full-precision base",
            "the base-model comparison for generation loads a separate full-precision base",
            "heads and poolers (classifier, score, lm_head, *pooler) stay unquantised",
        ),
    )
