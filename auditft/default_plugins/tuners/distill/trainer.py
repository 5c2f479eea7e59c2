"""The distillation loss and the HF ``Trainer`` subclass that trains the student with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
                      temperature: float, alpha: float) -> torch.Tensor:
    """``alpha * KL(p_t || p_s) * T^2 + (1 - alpha) * CE(student, labels)``, batch means.

    ``p = softmax(logits / T)``; the ``T^2`` keeps the soft-target gradients on the scale of
    the hard-label ones (Hinton et al., 2015)."""
    import torch.nn.functional as F

    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)
    ce = F.cross_entropy(student_logits.float(), labels)
    return alpha * kl + (1.0 - alpha) * ce


def distillation_trainer(teacher: nn.Module, *, temperature: float, alpha: float) -> type:
    """A ``transformers.Trainer`` subclass whose loss distils ``teacher`` into the model.

    The teacher stays in eval mode, is moved to the student's device on first use and runs
    under ``torch.no_grad``; it is not part of the trained model, so checkpoints hold the
    student only."""
    import torch
    from transformers import Trainer

    teacher.eval()
    teacher.requires_grad_(False)

    class DistillationTrainer(Trainer):
        loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides by GA steps

        def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: torch.Tensor | int | None = None) -> Any:
            labels = inputs["labels"]
            features = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**features)
            device = outputs.logits.device
            if next(teacher.parameters()).device != device:
                teacher.to(device)
            with torch.no_grad():
                teacher_logits = teacher(**features).logits
            loss = distillation_loss(outputs.logits, teacher_logits, labels,
                                     temperature=temperature, alpha=alpha)
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer
