"""What core hands to plugins: a ``TuneJob`` for tuners and an ``AuditJob`` for audits.

Both are plain dataclasses so third-party plugins depend on names, not on core internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from auditft.data import SplitData
    from auditft.inference import ModelSession
    from auditft.models import ResolvedModel
    from auditft.suite import Suite, TrainingSpec


@dataclass
class TuneJob:
    """Train on ``data.train`` (``data.validation`` for early stopping / eval loss) and write
    the adapter into ``adapter_dir`` as safetensors. Scratch files (checkpoints) go to
    ``work_dir``, which stays inside the run directory and is never released."""

    suite: Suite
    task: str
    base: ResolvedModel
    data: SplitData
    training: TrainingSpec
    options: BaseModel
    seed: int
    adapter_dir: Path
    work_dir: Path
    resume: bool = False


@dataclass
class AuditJob:
    """Audit the adapter (and the base model, for deltas) on ``data.test``.

    ``models`` loads the adapter once and caches predictions, so several audits share one
    inference pass over the test set.
    """

    suite: Suite
    task: str
    data: SplitData
    options: BaseModel
    seed: int
    models: ModelSession
    work_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)
