"""Tuner ``full``: every parameter trains (classic fine-tuning), through the HF Trainer.

The adapter directory holds a complete model: ``model.save_pretrained`` (safetensors,
``config.json``, ``generation_config.json``) plus the tokenizer. The tokenizer is saved
so the quarantined directory is a self-contained model once released (loadable with
``from_pretrained(dir)`` alone); ``load`` reads both from that directory, so the audits see
exactly the bytes a release ships. Tied input/output embeddings stay tied (the config says
so), and reloading reproduces the trained model's logits exactly.

Above ``warn_above_mb`` (default 500 MB) the run warns, on stderr and in the report's
tuner facts (``warnings``): the run directory holds the whole model, and every Trainer
checkpoint holds it again with the optimizer state (about 3x the model for AdamW).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.default_plugins.tuners._local import LocalTuner
from auditft.errors import ModelError

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.registry import TunerRegistry

KIND = "full"


class FullOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: warn (stderr and report facts) when the saved model is larger than this
    warn_above_mb: float = Field(default=500.0, ge=0)


def model_bytes(model: Any) -> int:
    """Bytes of the model's tensors as saved (tied tensors counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        key = (tensor.data_ptr(), tensor.numel())
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def size_warnings(size: int, limit_mb: float, checkpoint_steps: int) -> list[str]:
    mb = size / 1e6
    if mb <= limit_mb:
        return []
    text = (f"full fine-tuning saves the whole model ({mb:,.0f} MB) into the run directory, above "
            f"warn_above_mb={limit_mb:g}")
    if checkpoint_steps:
        text += (f"; each Trainer checkpoint (every {checkpoint_steps} steps, 2 kept under work/) "
                 f"adds about {3 * mb:,.0f} MB with the optimizer state")
    return [text]


class FullTuner(LocalTuner):
    kind = KIND
    format = "full"

    def prepare(self, model: Any, job: TuneJob) -> dict[str, Any]:
        for param in model.parameters():
            param.requires_grad_(True)
        size = model_bytes(model)
        warnings = size_warnings(size, self.options.warn_above_mb, job.training.checkpoint_steps)
        if warnings:
            from rich.console import Console

            for text in warnings:
                Console(stderr=True).print(f"[yellow]warning:[/yellow] {text}", highlight=False)
        return {"bytes": size, "warnings": warnings}

    def save(self, model: Any, tokenizer: Any, job: TuneJob, state: dict[str, Any]) -> dict[str, Any]:
        model.save_pretrained(str(job.adapter_dir))  # safetensors; tied weights stored once
        tokenizer.save_pretrained(str(job.adapter_dir))
        facts: dict[str, Any] = {"model_bytes": state["bytes"]}
        if state["warnings"]:
            facts["warnings"] = state["warnings"]
        return facts

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The saved model and tokenizer from ``adapter_dir`` (safetensors only), eval mode."""
        from auditft.models import load_tokenizer

        saved = replace(base, ref=f"{base.ref} (full fine-tune in {adapter_dir})", path=str(adapter_dir),
                        revision=None)
        tokenizer = load_tokenizer(saved)
        model = _load_saved(saved, data.task)
        if data.task == "classification":
            id2label = {int(k): v for k, v in model.config.id2label.items()}
            if [id2label.get(i) for i in range(len(data.labels))] != list(data.labels) or \
                    len(id2label) != len(data.labels):
                raise ModelError(f"{adapter_dir}: the saved classifier's labels {list(id2label.values())} "
                                 f"are not the suite's {data.labels}")
        model.eval()
        return model, tokenizer


def _load_saved(saved: ResolvedModel, task: str) -> Any:
    """``from_pretrained`` with the same safety kwargs as ``auditft.models`` (safetensors
    only, remote code as the suite says), refusing a directory whose weights do not cover
    the model exactly."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from auditft.models import placement

    auto = AutoModelForSequenceClassification if task == "classification" else AutoModelForCausalLM
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    load_kwargs, move_to = placement(saved, quantized=False)  # the run's precision and device
    try:
        model, info = auto.from_pretrained(saved.path, use_safetensors=True,
                                           trust_remote_code=saved.trust_remote_code,
                                           output_loading_info=True, **load_kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{saved.path}: cannot load the fully fine-tuned model: "
                         f"{' '.join(str(exc).split())[:300]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    problems = {k: sorted(map(str, info.get(k) or [])) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        detail = "; ".join(f"{k.replace('_', ' ')}: {', '.join(v[:3])}" for k, v in problems.items())
        raise ModelError(f"{saved.path}: the saved weights do not match the model ({detail})")
    return model.to(move_to) if move_to else model


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        KIND,
        FullTuner,
        summary="full fine-tuning: every parameter trains; the whole model is saved",
        tasks=("classification", "generation"),
        options=FullOptions,
        limitations=(
            "the quarantined artefact is a whole model (and checkpoints hold ~3x that with the "
            "optimizer state); memory use in training is ~4x the model for AdamW",
            "the base side of generation audits loads the base model a second time",
        ),
    )
