"""Seeding in one place: every model core builds (the run's adapter, a retrained one) is
initialised after ``seed_everything``, so heads and adapter weights start the same each time."""

from __future__ import annotations


def seed_everything(seed: int) -> None:
    from transformers import set_seed  # python, numpy and torch (CPU and CUDA) at once

    set_seed(seed)
