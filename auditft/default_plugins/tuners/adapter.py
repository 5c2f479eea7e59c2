"""Tuner ``adapter``: bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021), a small
self-contained implementation trained with the HF Trainer.

Each adapted sub-layer output projection (an ``nn.Linear``) becomes::

    out = linear(x)
    return out + up(act(down(out)))     # down: hidden -> hidden // reduction_factor

with ``up`` initialised to zero, so before training the model computes exactly what the base
computes. ``placement: houlsby`` adapts the attention output projection and the FFN output
projection of every transformer block, ``pfeiffer`` only the FFN output. Only the adapters
(and, for classification, the head and pooler) train; only they are saved, as
``adapter_model.safetensors`` beside ``adapter_config.json``.

Why not a library: AdapterHub's ``adapters`` pins ``transformers~=4.57``, and peft registers
new methods only under a member of its closed ``PeftType`` enum.

The adapted ``Linear`` keeps its parameter names (``...output.dense.weight``) and gains
``...output.dense.adapter.{down,up}.*``, so the Trainer's full-model checkpoints load back
into the adapted model on resume.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.default_plugins.tuners._local import (
    LocalTuner,
    find_blocks,
    head_parameter_names,
    load_tensors_strict,
    option_error,
    read_config,
    save_tensors,
    set_trainable,
    trainable_names,
    write_config,
)
from auditft.errors import ModelError

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.registry import TunerRegistry

KIND = "adapter"

#: block-relative names of (attention output projection, FFN output projection)
_BERT_LIKE = ("attention.output.dense", "output.dense")
_LLAMA_LIKE = ("self_attn.o_proj", "mlp.down_proj")
ARCHITECTURES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "camembert", "electra"), _BERT_LIKE),
    "distilbert": ("attention.out_lin", "ffn.lin2"),
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo2", "phi3"), _LLAMA_LIKE),
}


class AdapterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: bottleneck width = output width // reduction_factor (at least 1)
    reduction_factor: int = Field(default=16, ge=1, le=4096)
    placement: Literal["houlsby", "pfeiffer"] = "houlsby"
    activation: Literal["relu", "gelu", "silu"] = "relu"
    #: block-relative module names to adapt instead of the per-architecture defaults,
    #: e.g. ``[attention.output.dense]``; each must name an ``nn.Linear`` in every block
    #: (matched exactly inside each block, so ``output.dense`` is not
    #: ``attention.output.dense``). Without a block list, a name matches by dotted suffix.
    target_modules: list[str] | None = Field(default=None, min_length=1)
    #: classification: train the classifier head (and the pooler, if any) with the adapters
    train_head: bool = True


def _activation(name: str) -> Any:
    from torch import nn

    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}[name]()


@cache
def _classes() -> tuple[Any, Any]:
    """The adapter modules, defined on first use (plugin discovery does not import torch)."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        """``up(act(down(h)))`` with ``up`` zero-initialised; ``down`` keeps torch's default
        Linear init so the zero ``up`` gets a useful gradient from the first step."""

        def __init__(self, features: int, width: int, activation: str) -> None:
            super().__init__()
            self.down = nn.Linear(features, width)
            self.act = _activation(activation)
            self.up = nn.Linear(width, features)
            nn.init.zeros_(self.up.weight)  # the adapted model starts as the base model
            nn.init.zeros_(self.up.bias)

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            return self.up(self.act(self.down(hidden)))

    class BottleneckLinear(nn.Linear):
        """A drop-in ``nn.Linear`` sharing the wrapped layer's parameters (same names in the
        state dict) plus ``adapter``: ``out = linear(x); return out + adapter(out)``."""

        def __init__(self, linear: nn.Linear, width: int, activation: str) -> None:
            nn.Module.__init__(self)
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.weight = linear.weight
            self.bias = linear.bias
            self.adapter = Bottleneck(linear.out_features, width, activation).to(
                device=linear.weight.device, dtype=linear.weight.dtype)
            self.adapter_enabled = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = nn.functional.linear(x, self.weight, self.bias)
            return out + self.adapter(out) if self.adapter_enabled else out

    return Bottleneck, BottleneckLinear


def _bottleneck_linear(linear: Any, width: int, activation: str) -> Any:
    return _classes()[1](linear, width, activation)


def is_adapted(module: Any) -> bool:
    return isinstance(module, _classes()[1])


def resolve_targets(model: Any, options: AdapterOptions) -> list[str]:
    """Full module names to adapt, in model order."""
    from torch import nn

    found = find_blocks(model)
    model_type = getattr(model.config, "model_type", "?")
    if options.target_modules:
        relative = list(options.target_modules)
    elif model_type in ARCHITECTURES:
        attention, ffn = ARCHITECTURES[model_type]
        relative = [attention, ffn] if options.placement == "houlsby" else [ffn]
    else:
        raise option_error(KIND, "target_modules",
                           f"no default adapter placement for model type {model_type!r} (known: "
                           f"{', '.join(sorted(ARCHITECTURES))}); list the block-relative names of the "
                           "attention and FFN output projections, e.g. [self_attn.o_proj, mlp.down_proj]")
    modules = dict(model.named_modules())
    targets: list[str] = []
    if found is not None:
        prefix, blocks = found
        for name in relative:
            for index in range(len(blocks)):
                full = f"{prefix}.{index}.{name}"
                if full not in modules:
                    raise option_error(KIND, "target_modules",
                                       f"block {prefix}.{index} has no module {name!r}")
                targets.append(full)
    else:
        for name in relative:
            hits = [n for n in modules if n == name or n.endswith("." + name)]
            if not hits:
                raise option_error(KIND, "target_modules", f"no module of the model ends with {name!r}")
            targets.extend(hits)
    order = list(modules)
    targets = sorted(set(targets), key=order.index)
    for name in targets:
        if not isinstance(modules[name], nn.Linear):
            raise option_error(KIND, "target_modules",
                               f"{name} is a {type(modules[name]).__name__}; adapters wrap nn.Linear only")
    return targets


def inject(model: Any, targets: list[str], widths: dict[str, int], activation: str) -> None:
    """Replace each target ``nn.Linear`` by its adapted twin (same parameters)."""
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        if is_adapted(linear):
            raise ModelError(f"{name} already has an adapter")
        setattr(parent, child, _bottleneck_linear(linear, widths[name], activation))
    model.disable_adapter = partial(_disabled, model)  # the base model, for generation audits


@contextmanager
def _disabled(model: Any) -> Any:
    """Inside the block the adapted model computes exactly the base model (what
    ``ModelSession`` uses for the base side of generation audits, like peft's)."""
    adapted = [m for m in model.modules() if is_adapted(m)]
    before = [m.adapter_enabled for m in adapted]
    for m in adapted:
        m.adapter_enabled = False
    try:
        yield
    finally:
        for m, state in zip(adapted, before, strict=True):
            m.adapter_enabled = state


class AdapterTuner(LocalTuner):
    kind = KIND
    format = "bottleneck"

    def prepare(self, model: Any, job: TuneJob) -> dict[str, Any]:
        options = self.options
        targets = resolve_targets(model, options)
        modules = dict(model.named_modules())
        widths = {n: max(1, modules[n].out_features // options.reduction_factor) for n in targets}
        inject(model, targets, widths, options.activation)
        adapter_params = [n for n, _ in model.named_parameters() if ".adapter." in n
                          and n.rsplit(".adapter.", 1)[0] in widths]
        head = head_parameter_names(model, pooler=True) if job.task == "classification" else []
        set_trainable(model, set(adapter_params) | (set(head) if options.train_head else set()))
        return {"targets": targets, "widths": widths,
                "head": head_parameter_names(model, pooler=False) if job.task == "classification" else []}

    def save(self, model: Any, tokenizer: Any, job: TuneJob, state: dict[str, Any]) -> dict[str, Any]:
        options = self.options
        # a classifier head is new: saved even when not trained, or it could not be reloaded
        names = trainable_names(model)
        names += [n for n in state["head"] if n not in names]
        save_tensors(model, names, job.adapter_dir)
        widths = state["widths"]
        write_config(job.adapter_dir, {
            "kind": KIND,
            "reduction_factor": options.reduction_factor,
            "placement": options.placement if not options.target_modules else "custom",
            "activation": options.activation,
            "hidden_size": getattr(model.config, "hidden_size", None),
            "targets": state["targets"],
            "bottleneck": widths,
            "tensors": names,
            "train_head": options.train_head,
        })
        adapter_count = sum(p.numel() for n, p in model.named_parameters() if ".adapter." in n)
        return {"adapter": {"placement": options.placement if not options.target_modules else "custom",
                            "reduction_factor": options.reduction_factor,
                            "activation": options.activation,
                            "adapted_modules": len(state["targets"]),
                            "bottleneck_widths": sorted(set(widths.values())),
                            "adapter_parameters": int(adapter_count)}}

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The base for the task with the saved adapters (and head) on it, in eval mode."""
        from auditft.models import load_for_task, load_tokenizer

        config = read_config(adapter_dir, KIND)
        tokenizer = load_tokenizer(base)
        model = load_for_task(base, data.task, data.labels)
        modules = dict(model.named_modules())
        missing = [t for t in config["targets"] if t not in modules]
        if missing:
            raise ModelError(f"{Path(adapter_dir) / 'adapter_config.json'}: the base model has no module "
                             f"{missing[0]} (adapter trained on another architecture?)")
        inject(model, config["targets"], config["bottleneck"], config["activation"])
        load_tensors_strict(model, adapter_dir, config["tensors"])
        model.eval()
        return model, tokenizer


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        KIND,
        AdapterTuner,
        summary="bottleneck adapters (Houlsby/Pfeiffer placement) on the HF Trainer",
        tasks=("classification", "generation"),
        options=AdapterOptions,
        limitations=(
            "default placements for BERT-like (bert, roberta, xlm-roberta, camembert, electra, distilbert) "
            "and Llama-like (llama, mistral, qwen2, qwen3, gemma, gemma2, olmo2, phi3) models; others need "
            "target_modules",
            "adapts nn.Linear projections only (not GPT-2's Conv1D)",
            "saved in auditft's own format (adapter_model.safetensors + adapter_config.json), "
            "not loadable by peft or AdapterHub",
        ),
    )
