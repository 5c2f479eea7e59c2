"""The student: a shallower copy of the teacher, initialised from every other teacher block
(DistilBERT-style) or evenly strided blocks for other depths."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

from auditft.errors import ModelError

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``(name, ModuleList)`` of the transformer blocks (the shared finder), or a clear error."""
    from auditft.default_plugins.tuners._local import find_blocks as find

    found = find(model)
    if found is None:
        raise ModelError(f"distill: cannot find the transformer blocks of {type(model).__name__} "
                         "(no nn.ModuleList of length config.num_hidden_layers)")
    return found


def kept_layers(n: int, k: int) -> list[int]:
    """Teacher blocks copied into a ``k``-block student: every other block (0, 2, 4, ...)
    when ``k == ceil(n / 2)``, otherwise evenly strided from block 0."""
    if not 1 <= k < n:
        raise ValueError(f"the student needs between 1 and {n - 1} blocks, not {k}")
    if k == math.ceil(n / 2):
        return list(range(0, n, 2))
    return [i * n // k for i in range(k)]


def init_student(teacher: PreTrainedModel, student_layers: int | None = None) -> tuple[PreTrainedModel, list[int]]:
    """A shallower copy of ``teacher`` (same class and config, fewer blocks) initialised from
    the teacher: every weight outside the block list is copied (embeddings, pooler, head),
    and student block ``i`` gets teacher block ``kept[i]``. Returns ``(student, kept)``."""
    import torch

    prefix, _ = find_blocks(teacher)
    n = int(teacher.config.num_hidden_layers)
    k = student_layers if student_layers is not None else math.ceil(n / 2)
    kept = kept_layers(n, k)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = k
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == n:  # per-layer attention kinds
        config.layer_types = [layer_types[i] for i in kept]
    student = type(teacher)(config)
    source = teacher.state_dict()
    mapped = {}
    block = prefix + "."
    for key in student.state_dict():
        teacher_key = key
        if key.startswith(block):
            index, rest = key[len(block):].split(".", 1)
            teacher_key = f"{block}{kept[int(index)]}.{rest}"
        mapped[key] = source[teacher_key].detach().clone()
    with torch.no_grad():
        student.load_state_dict(mapped, strict=True)
    student.to(next(teacher.parameters()).device)
    return student, kept
