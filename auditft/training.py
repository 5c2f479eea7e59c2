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
    from auditft.data import Example
    from auditft.jobs import TuneJob


def classification_dataset(examples: list[Example], tokenizer: Any, max_length: int) -> Any:
    """Tokenise once into a ``datasets.Dataset`` (padding happens per batch in the collator)."""
    from datasets import Dataset

    raw = Dataset.from_dict({"text": [ex.text for ex in examples], "label": [ex.label for ex in examples]})
    return raw.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
        batched=True, remove_columns=["text"], desc=None,
    )


def count_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return int(trainable), int(total)


def train(job: TuneJob, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any | None) -> TuneResult:
    """Run the HF Trainer with the suite's settings; return steps, seconds and loss curve."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from auditft.progress import enabled as progress_enabled

    spec = job.training
    set_seed(job.seed)
    args = TrainingArguments(
        output_dir=str(Path(job.work_dir) / "checkpoints"),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps or -1,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.eval_batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        warmup_steps=spec.warmup_ratio,
        lr_scheduler_type=spec.lr_scheduler,
        logging_strategy="steps",
        logging_steps=spec.logging_steps,
        eval_strategy="epoch" if eval_ds is not None else "no",
        save_strategy="no",  # nothing approvable is written outside the adapter directory
        seed=job.seed,
        data_seed=job.seed,
        report_to="none",
        disable_tqdm=not progress_enabled(),
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    if not progress_enabled():
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout when quiet
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    curve = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h]
    evals = [(int(h["step"]), float(h["eval_loss"])) for h in history if "eval_loss" in h]
    trainable, total = count_parameters(model)
    return TuneResult(
        trainable_parameters=trainable,
        total_parameters=total,
        steps=int(trainer.state.global_step),
        seconds=round(seconds, 3),
        loss_curve=curve,
        facts={"eval_loss_curve": [[s, v] for s, v in evals],
               "train_rows": len(train_ds), "validation_rows": len(eval_ds) if eval_ds is not None else 0},
    )


def adapter_size(adapter_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(adapter_dir).rglob("*") if p.is_file())


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
