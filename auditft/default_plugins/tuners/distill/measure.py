"""Teacher against student: accuracy and inference time on the same batches, side by side."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from auditft.data import Example

#: timed passes per model; the fastest counts (the first pass also warms up)
TIMING_PASSES = 3


def _batches(examples: list[Example], tokenizer: PreTrainedTokenizerBase, max_length: int,
             batch_size: int) -> list[dict[str, Any]]:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    batches = []
    for start in range(0, len(order), batch_size):
        ids = order[start:start + batch_size]
        enc = tokenizer([examples[i].text for i in ids], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
        batches.append({"ids": ids, "enc": dict(enc)})
    return batches


def _pass(model: nn.Module, batches: list[dict[str, Any]], n: int) -> tuple[np.ndarray, float]:
    import numpy as np
    import torch

    device = next(model.parameters()).device
    predictions = np.zeros(n, dtype=np.int64)
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            enc = {k: v.to(device) for k, v in batch["enc"].items()}
            predictions[batch["ids"]] = model(**enc).logits.argmax(-1).cpu().numpy()
    return predictions, time.perf_counter() - started


def compare(teacher: nn.Module, student: nn.Module, tokenizer: PreTrainedTokenizerBase, examples: list[Example], *,
            max_length: int, batch_size: int, passes: int = TIMING_PASSES) -> dict[str, Any]:
    """Accuracy of both models on ``examples`` and their inference time on the same batches,
    timed alternately in this process (the fastest of ``passes`` per model)."""
    import numpy as np

    teacher.eval()
    student.eval()
    labels = np.array([ex.label for ex in examples], dtype=np.int64)
    batches = _batches(examples, tokenizer, max_length, batch_size)
    times: dict[str, list[float]] = {"teacher": [], "student": []}
    predictions: dict[str, Any] = {}
    for _ in range(max(passes, 1)):
        for name, model in (("teacher", teacher), ("student", student)):
            predicted, seconds = _pass(model, batches, len(examples))
            predictions[name] = predicted
            times[name].append(seconds)
    teacher_s, student_s = min(times["teacher"]), min(times["student"])
    teacher_acc = float((predictions["teacher"] == labels).mean()) if len(labels) else float("nan")
    student_acc = float((predictions["student"] == labels).mean()) if len(labels) else float("nan")
    return {
        "teacher_accuracy": round(teacher_acc, 4),
        "student_accuracy": round(student_acc, 4),
        "retained_accuracy": round(student_acc / teacher_acc, 4) if teacher_acc > 0 else None,
        "teacher_inference_seconds": round(teacher_s, 4),
        "student_inference_seconds": round(student_s, 4),
        "speed_up": round(teacher_s / student_s, 3) if student_s > 0 else None,
    }
