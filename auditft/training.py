"""Shared Hugging Face Trainer plumbing for tuner plugins.

Tuners build the model; this module tokenises once, configures the Trainer from the suite's
``training`` block (seed, schedule, accumulation, logging), trains with a progress bar and
returns the facts the report needs. Going through the Trainer is what makes
``accelerate launch`` / ``torchrun`` scale the same suite out unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.records import TuneResult

if TYPE_CHECKING:
    import torch
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer
    from auditft.data import Example
    from auditft.jobs import TuneJob


#: tokenised rows, per tokenizer and settings: k-fold retraining tokenises each row once
_TOKENS: dict[tuple[Any, ...], dict[Any, Any]] = {}


def _memo(tokenizer: PreTrainedTokenizerBase, *settings: object) -> dict[Any, Any]:
    key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer), *settings)
    if key not in _TOKENS and len(_TOKENS) >= 4:
        _TOKENS.pop(next(iter(_TOKENS)))
    return _TOKENS.setdefault(key, {})


def classification_dataset(examples: list[Example], tokenizer: PreTrainedTokenizerBase, max_length: int) -> Any:
    """Tokenise into a ``datasets.Dataset`` (padding happens per batch in the collator)."""
    from datasets import Dataset

    memo = _memo(tokenizer, "classification", max_length)
    missing = list(dict.fromkeys(ex.text for ex in examples if ex.text not in memo))
    if missing:
        encoded = tokenizer(missing, truncation=True, max_length=max_length)
        for i, text in enumerate(missing):
            memo[text] = {name: encoded[name][i] for name in encoded.keys()}
    return Dataset.from_list([{**memo[ex.text], "label": ex.label} for ex in examples])


def generation_dataset(examples: list[Example], tokenizer: PreTrainedTokenizerBase, max_length: int,
                        system: str | None = None) -> Any:
    """Prompt/response pairs through the chat template, loss on response tokens only."""
    from datasets import Dataset

    from auditft.chat import encode_pair, messages

    memo = _memo(tokenizer, "generation", max_length, system)
    rows, truncated = [], 0
    for ex in examples:
        key = (ex.text, ex.response or "")
        if key not in memo:
            memo[key] = encode_pair(tokenizer, messages(ex.text, system), ex.response or "", max_length)
        features, cut = memo[key]
        rows.append(features)
        truncated += cut
    dataset = Dataset.from_list(rows)
    dataset.truncated_rows = truncated  # reported as a fact
    return dataset


def task_datasets(job: TuneJob, tokenizer: PreTrainedTokenizerBase) -> tuple[Any, Any | None]:
    """Train and validation datasets for the job's task, tokenised once."""
    max_length = job.training.max_length
    if job.task == "classification":
        build = lambda rows: classification_dataset(rows, tokenizer, max_length)  # noqa: E731
    else:
        system = job.suite.generation.system_prompt
        build = lambda rows: generation_dataset(rows, tokenizer, max_length, system)  # noqa: E731
    return build(job.data.train), (build(job.data.validation) if job.data.validation else None)


def collator(task: str, tokenizer: PreTrainedTokenizerBase) -> Any:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    from auditft.chat import IGNORE_INDEX

    if task == "classification":
        return DataCollatorWithPadding(tokenizer)
    # pads input ids and attention mask with the pad token and labels with IGNORE_INDEX
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return int(trainable), int(total)


def train(job: TuneJob, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train_ds: Dataset, eval_ds: Any | None, *,
          trainer_class: type[Trainer] | None = None, callbacks: list[Any] | None = None) -> TuneResult:
    """Run the HF Trainer with the suite's settings; return steps, seconds and loss curve.

    Checkpoints (weights, optimizer, scheduler, RNG state) go to ``work/checkpoints`` every
    ``checkpoint_steps``; with ``job.resume`` training continues from the newest one, and the
    Trainer skips the batches already seen, so the final step count and batches match an
    uninterrupted run.
    """
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed

    from auditft.distributed import enabled, per_device_batch
    from auditft.models import resolve_precision
    from auditft.progress import enabled as progress_enabled

    spec = job.training
    precision = resolve_precision(spec.precision)
    set_seed(job.seed)
    trainable_in_fp32(model)
    checkpoint_dir = Path(job.work_dir) / "checkpoints"
    early = spec.early_stopping_patience is not None and eval_ds is not None
    eval_strategy = "no" if eval_ds is None else ("steps" if (spec.eval_steps or early) else "epoch")
    eval_steps = spec.eval_steps or spec.checkpoint_steps or 50
    if early:
        save = {"save_strategy": "steps", "save_steps": eval_steps, "load_best_model_at_end": True,
                "metric_for_best_model": "eval_loss", "greater_is_better": False}
    elif spec.checkpoint_steps:
        save = {"save_strategy": "steps", "save_steps": spec.checkpoint_steps}
    else:
        save = {"save_strategy": "no"}
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps or -1,
        # the suite's batch_size is the global batch, however many processes share it
        per_device_train_batch_size=per_device_batch(spec.batch_size),
        # generation: eval logits are batch x length x vocabulary; a training-size batch keeps
        # the eval-loss pass from setting the run's peak memory (benchmark P5)
        per_device_eval_batch_size=(min(spec.eval_batch_size, spec.batch_size) if job.task == "generation"
                                    else spec.eval_batch_size),
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        warmup_steps=spec.warmup_ratio,
        lr_scheduler_type=spec.lr_scheduler,
        logging_strategy="steps",
        logging_steps=spec.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps if eval_strategy == "steps" else None,
        save_total_limit=2,  # the newest may be half-written when a run is killed: keep one more
        seed=job.seed,
        data_seed=job.seed,
        report_to="none",
        disable_tqdm=not progress_enabled(),
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda(),
        # mixed precision: autocast in bf16/fp16 around fp32 trainable parameters (fp16 also
        # scales the loss); bf16 runs on CPU too, where the Trainer needs ``use_cpu``
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # data-parallel on CPU: accelerate only picks DDP over gloo when told it is on CPU
        use_cpu=(enabled() or precision == "bf16") and not _cuda(),
        # off: with it, transformers multiplies the loss by the process count for models whose
        # loss ignores the token count (classifiers), doubling gradients under DDP
        average_tokens_across_devices=False,
        **save,
    )
    extra = list(callbacks or [])
    if early:
        extra.append(EarlyStoppingCallback(early_stopping_patience=spec.early_stopping_patience))
    trainer_type = trainer_class or Trainer
    if spec.batching == "by_length":
        from auditft.batching import bucketed

        trainer_type = bucketed(trainer_type, job.seed)
    elif spec.batching == "random_halves":
        from auditft.batching import halved

        trainer_type = halved(trainer_type)
    trainer = trainer_type(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator(job.task, tokenizer),
        callbacks=extra,
    )
    if not progress_enabled():
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout when quiet
    resume_from = None
    if job.resume and checkpoint_dir.is_dir():
        resume_from = last_complete_checkpoint(checkpoint_dir)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - started
    state = trainer.state
    history = state.log_history
    curve = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h]
    evals = [(int(h["step"]), float(h["eval_loss"])) for h in history if "eval_loss" in h]
    trainable, total = count_parameters(model)
    steps_run = int(state.global_step) - (_step_of(resume_from) if resume_from else 0)
    facts: dict[str, Any] = {
        "eval_loss_curve": [[s, v] for s, v in evals],
        "train_rows": len(train_ds),
        "validation_rows": len(eval_ds) if eval_ds is not None else 0,
        "seconds_per_step": round(seconds / max(steps_run, 1), 4),
        "resumed_from_step": _step_of(resume_from) if resume_from else None,
        "truncated_rows": int(getattr(train_ds, "truncated_rows", 0)),
        "precision": precision,
        "batching": spec.batching,
        "devices": sorted({str(p.device) for p in model.parameters()}),
    }
    if early:
        facts["early_stopping"] = {"patience": spec.early_stopping_patience,
                                   "best_step": _step_of(state.best_model_checkpoint) if state.best_model_checkpoint else None,
                                   "best_eval_loss": state.best_metric,
                                   "stopped_early": int(state.global_step) < int(state.max_steps)}
    return TuneResult(
        trainable_parameters=trainable,
        total_parameters=total,
        steps=int(state.global_step),
        seconds=round(seconds, 3),
        loss_curve=curve,
        facts=facts,
    )


def trainable_in_fp32(model: torch.nn.Module) -> None:
    """Trainable half-precision parameters become fp32 (a base loaded in bf16/fp16 keeps its
    frozen weights as they are): the optimizer updates fp32 master weights, autocast computes
    in the lower precision, and fp16's gradient scaler refuses half-precision gradients."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.float()


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing, or None; newer half-written ones
    (a run killed while saving) are removed so the resumed run can write them again.

    The Trainer writes ``trainer_state.json`` last (after weights, optimizer, scheduler and RNG
    state), so a checkpoint is complete when that file parses and names the checkpoint's step.
    transformers' ``get_last_checkpoint`` only looks at folder names and would pick a folder
    killed before its weights were written.
    """
    import json
    import shutil

    folders = [p for p in Path(checkpoint_dir).glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()]
    for folder in sorted(folders, key=_step_of, reverse=True):
        try:
            state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
            complete = int(state["global_step"]) == _step_of(folder)
        except (OSError, ValueError, KeyError, TypeError):
            complete = False
        if complete:
            return str(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return None


def _step_of(checkpoint: str | Path) -> int:
    return int(str(checkpoint).rstrip("/").rsplit("-", 1)[-1])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
