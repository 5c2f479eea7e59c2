"""Tuner ``freeze``: train only chosen parts of the base model, everything else frozen.

``trainable_layers: N`` unfreezes the last N transformer blocks (the block list is found
generically: the first ``nn.ModuleList`` as long as ``config.num_hidden_layers``, e.g.
``bert.encoder.layer`` or ``model.layers``); ``trainable_modules`` adds parameters by name
(a substring, or a glob such as ``*.attention.*``); ``train_embeddings`` adds the input
embeddings. For classification the new head (and the pooler, if any) always trains.

Only the unfrozen tensors (and the head) are saved, as ``adapter_model.safetensors`` with
``adapter_config.json`` listing them; loading puts them back onto a freshly loaded base
(strict: every saved tensor must land). The report's tuner facts list what was unfrozen,
grouped by block / module (``unfrozen``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.default_plugins.tuners._local import (
    LocalTuner,
    embedding_parameter_names,
    find_blocks,
    group_counts,
    head_parameter_names,
    load_tensors_strict,
    matches,
    option_error,
    read_config,
    save_tensors,
    set_trainable,
    trainable_names,
    write_config,
)

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.registry import TunerRegistry

KIND = "freeze"


class FreezeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: train the last N transformer blocks (0: none, only ``trainable_modules``)
    trainable_layers: int = Field(default=2, ge=0)
    #: also train parameters whose name contains one of these (or matches it, for a glob)
    trainable_modules: list[str] = Field(default_factory=list)
    #: also train the input embeddings (tied to the LM head in most small causal LMs)
    train_embeddings: bool = False


def select(model: Any, options: FreezeOptions, task: str) -> list[str]:
    """Names of the parameters to train, in model order."""
    names = [n for n, _ in model.named_parameters()]
    chosen: set[str] = set()
    if options.trainable_layers:
        found = find_blocks(model)
        if found is None:
            raise option_error(KIND, "trainable_layers",
                               "cannot find the model's list of transformer blocks (no nn.ModuleList as long "
                               "as config.num_hidden_layers); set trainable_layers: 0 and name the "
                               "parameters in trainable_modules")
        prefix, blocks = found
        if options.trainable_layers > len(blocks):
            raise option_error(KIND, "trainable_layers",
                               f"{options.trainable_layers} blocks asked for, the model has {len(blocks)}")
        first = len(blocks) - options.trainable_layers
        wanted = tuple(f"{prefix}.{i}." for i in range(first, len(blocks)))
        chosen.update(n for n in names if n.startswith(wanted))
    for pattern in options.trainable_modules:
        hits = [n for n in names if matches(n, pattern)]
        if not hits:
            raise option_error(KIND, "trainable_modules", f"{pattern!r} matches no parameter name")
        chosen.update(hits)
    if options.train_embeddings:
        chosen.update(embedding_parameter_names(model))
    if task == "classification":
        chosen.update(head_parameter_names(model, pooler=True))
    if not chosen:
        raise option_error(KIND, "trainable_layers", "nothing to train: trainable_layers is 0, "
                           "trainable_modules is empty and train_embeddings is false")
    return [n for n in names if n in chosen]


class FreezeTuner(LocalTuner):
    kind = KIND
    format = "partial"

    def prepare(self, model: Any, job: TuneJob) -> dict[str, Any]:
        set_trainable(model, set(select(model, self.options, job.task)))
        return {}

    def save(self, model: Any, tokenizer: Any, job: TuneJob, state: dict[str, Any]) -> dict[str, Any]:
        names = trainable_names(model)
        save_tensors(model, names, job.adapter_dir)
        groups = group_counts(model, names)
        options = self.options
        write_config(job.adapter_dir, {
            "kind": KIND,
            "trainable_layers": options.trainable_layers,
            "trainable_modules": list(options.trainable_modules),
            "train_embeddings": options.train_embeddings,
            "unfrozen": groups,
            "tensors": names,
        })
        return {"unfrozen": groups}

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The base for the task with the saved (unfrozen) tensors put back, in eval mode."""
        from auditft.models import load_for_task, load_tokenizer

        config = read_config(adapter_dir, KIND)
        tokenizer = load_tokenizer(base)
        model = load_for_task(base, data.task, data.labels)
        load_tensors_strict(model, adapter_dir, config["tensors"])
        model.eval()
        return model, tokenizer


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        KIND,
        FreezeTuner,
        summary="train only the last N blocks / named modules (+ head), base frozen",
        tasks=("classification", "generation"),
        options=FreezeOptions,
        limitations=(
            "the saved tensors are whole base-model matrices: larger than LoRA/adapters, and only "
            "meaningful on the exact base weights recorded in the manifest",
        ),
    )
