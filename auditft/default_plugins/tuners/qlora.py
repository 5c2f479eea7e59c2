"""Tuner ``qlora``: LoRA on a base whose linear layers are stored in 4-bit NF4 (bitsandbytes).

The base model is loaded through ``auditft.models.load_for_task`` with a
``BitsAndBytesConfig`` (NF4, computing in the run's precision: ``training.precision``, fp32
unless bf16/fp16 is asked for or ``auto`` finds a bf16 CUDA device; optional double quantisation of the
quantisation constants); every linear layer but the output side (classifier head, BERT
pooler, ``score``, ``lm_head``) becomes a ``bitsandbytes.nn.Linear4bit``. LoRA adapters
(same options as ``lora``) are then trained on top in float32, and only they (plus the
classifier head) are saved. Loading the adapter back quantises the base the same way, so
the audits measure the model that would ship.

``peft.prepare_model_for_kbit_training`` is applied (without gradient checkpointing): it
freezes the base and casts the non-quantised float16/bfloat16 parameters (norms,
embeddings) to float32 for stable training; the 4-bit weights stay packed ``uint8``, so the
memory saving is kept (measured: the footprint is the same before and after it).

The same numbers on every CPU. On CPUs with AVX512-BF16 (AMD Zen 4, recent Xeons)
bitsandbytes 0.50 switches a 4-bit layer, the first time it runs in eval mode without
gradients, to a repacked weight layout computed in bfloat16. That path (1) fails for layers
narrower than its blocks (``shape '[32, 0]' is invalid``), (2) stays switched on when training
resumes after an evaluation, and then fails in the backward pass, and (3) computes in
bfloat16 where the suite asked for float32, so the audited figures would depend on the CPU
vendor. ``portable_kernels`` turns that path off on every 4-bit layer, and in addition a linear
layer is quantised only when bitsandbytes could pack it (input width a multiple of 64, output
width a multiple of 32), so no future path trips on a narrow layer; the layers kept in full
precision are listed in the tuner facts (``full_precision_layers``). Real models' widths are
multiples of 64 (nothing is kept); the tiny test models keep their wide layers in 4 bits.

Device: bitsandbytes places the model itself (the GPU when CUDA is available, else the
CPU backend); nothing here names a device. bitsandbytes itself is imported only here
(``auditft.optional_imports``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from auditft import hookimpl
from auditft.default_plugins.tuners.lora import LoraOptions, lora_config
from auditft.optional_imports import bitsandbytes
from auditft.tuners import PeftTuner

if TYPE_CHECKING:
    from auditft.models import ResolvedModel
    from auditft.registry import TunerRegistry

#: modules kept in full precision: trained heads and the layers feeding them. Patterns
#: follow transformers' ``should_convert_module`` (prefix, regex with a module boundary,
#: or suffix), so ``.*pooler`` matches ``bert.pooler.dense``.
SKIP_MODULES = ["classifier", "score", "lm_head", r".*pooler"]
#: bitsandbytes' 4-bit block along the input features (``Params4bit`` blocksize), and the
#: output-feature block of its CPU weight packing (``_convert_weight_packed_for_cpu``)
INPUT_BLOCK = 64
OUTPUT_BLOCK = 32
#: the tuner fact ``compute_dtype`` for each resolved precision
COMPUTE_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class QloraOptions(LoraOptions):
    model_config = ConfigDict(extra="forbid")

    #: quantise the quantisation constants too (~0.4 bit/parameter less; QLoRA paper)
    double_quant: bool = True
    #: recompute activations in the backward pass (peft's default for k-bit training): with
    #: the base in 4 bits, activations are most of the peak memory (benchmark P5: peak RSS
    #: 0.59 of lora's with it, 1.00 without, for about 37% more time per step)
    gradient_checkpointing: bool = True


def packable(in_features: int, out_features: int) -> bool:
    """Whether bitsandbytes can store and pack a linear layer of this shape in 4 bits."""
    return in_features >= INPUT_BLOCK and in_features % INPUT_BLOCK == 0 and out_features % OUTPUT_BLOCK == 0


def unpackable_layers(base: ResolvedModel, task: str, labels: list[str]) -> list[str]:
    """Names of the linear layers ``packable`` refuses, read from a weightless (meta-device)
    copy of the model: nothing is loaded twice."""
    import torch
    from transformers.quantizers.quantizers_utils import should_convert_module

    from auditft.models import skeleton

    # heads and poolers are kept anyway (SKIP_MODULES): list only what width alone keeps
    return [name for name, module in skeleton(base, task, labels).named_modules()
            if isinstance(module, torch.nn.Linear) and should_convert_module(name, SKIP_MODULES)
            and not packable(module.in_features, module.out_features)]


def quantization_config(double_quant: bool, keep: list[str] | None = None, precision: str = "fp32") -> Any:
    """NF4 computing in ``precision`` (fp32, bf16, fp16); ``keep`` names further modules to
    leave unquantised."""
    import re

    from transformers import BitsAndBytesConfig

    from auditft.models import torch_dtype

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch_dtype(precision),
        bnb_4bit_use_double_quant=double_quant,
        # full names, escaped: transformers reads each entry as a regex anchored at the start
        llm_int8_skip_modules=list(SKIP_MODULES) + [re.escape(name) for name in keep or []],
    )


def count_4bit(model: Any) -> int:
    bnb = bitsandbytes()
    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def portable_kernels(model: Any) -> None:
    """Keep every 4-bit layer on bitsandbytes' float32 dequantise-and-matmul path (see the
    module docstring: the AVX512-BF16 repacking differs by CPU and breaks training)."""
    bnb = bitsandbytes()
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


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
        self._footprint: dict[str, Any] = {}
        self._precision = "fp32"

    def load_base(self, base: ResolvedModel, task: str, labels: list[str]) -> Any:
        bitsandbytes()  # before transformers checks that it is available
        from peft import prepare_model_for_kbit_training

        from auditft.models import load_for_task

        keep = unpackable_layers(base, task, labels)
        self._precision = base.precision
        model = load_for_task(base, task, labels,
                              quantization_config=quantization_config(self.options.double_quant, keep, base.precision))
        self._footprint = {"memory_footprint_bytes": int(model.get_memory_footprint()),
                           "fp32_footprint_bytes": fp32_bytes(model),
                           "quantized_linear_layers": count_4bit(model),
                           "full_precision_layers": keep}
        portable_kernels(model)
        release_checkpoint_pages(model)
        # use_reentrant=True is what torch did by default (and P5 measured); saying it silences
        # torch's warning about the default changing
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=self.options.gradient_checkpointing,
                                               gradient_checkpointing_kwargs={"use_reentrant": True})

    def peft_config(self, task: str, model: Any) -> Any:
        return lora_config(self.options, task)

    def extra_facts(self, model: Any) -> dict[str, Any]:
        facts: dict[str, Any] = {"quantization": "nf4" + (" + double quant" if self.options.double_quant else ""),
                                 "compute_dtype": COMPUTE_DTYPE_NAMES[self._precision], **self._footprint}
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

    import torch

    bnb = bitsandbytes()
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
            "heads and poolers (classifier, score, lm_head, *pooler) stay unquantised, and so do "
            "linear layers whose input width is not a multiple of 64 or output width not a multiple of "
            "32 (bitsandbytes cannot pack them; listed in the facts as full_precision_layers)",
        ),
    )
