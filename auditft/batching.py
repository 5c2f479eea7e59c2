"""Training batches of similar length (``training.batching: by_length``).

The collator pads each batch to its longest row, so a random batch of short and long notes
spends much of its compute on padding (the demo's batches are 70% real tokens). Grouping rows
of similar length removes most of it. Unlike transformers' ``group_by_length`` sampler, which
runs each megabatch from its longest batch to its shortest and draws from the global RNG, this
one shuffles the batches themselves with a generator seeded from the run's seed and the epoch:
no length curriculum inside an epoch, and a resumed run sees exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

#: rows sorted together: this many batches (as in fairseq and transformers' default of 50)
BUCKET_BATCHES = 50


class LengthBucketSampler:
    """Row order for a DataLoader: a seeded shuffle, cut into buckets of ``BUCKET_BATCHES``
    batches sorted by length, cut into batches, the full batches shuffled (the one short batch,
    if any, last so batch boundaries stay where the DataLoader cuts)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by accelerate's DataLoader at each epoch: a new order per epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order())

    def order(self) -> list[int]:
        import torch

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        shuffled = torch.randperm(len(self.lengths), generator=generator).tolist()
        span = self.batch_size * BUCKET_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(shuffled), span):
            bucket = sorted(shuffled[start:start + span], key=lambda i: self.lengths[i])
            batches += [bucket[i:i + self.batch_size] for i in range(0, len(bucket), self.batch_size)]
        tail = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        picks = torch.randperm(len(batches), generator=generator).tolist()
        return [row for b in picks for row in batches[b]] + [row for batch in tail for row in batch]


def bucketed(trainer_class: type[Any], seed: int) -> type[Any]:
    """``trainer_class`` whose training sampler is a :class:`LengthBucketSampler` over the
    training rows' token counts, in batches of the DataLoader's size."""

    class LengthBucketedTrainer(trainer_class):
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = [len(ids) for ids in dataset["input_ids"]]
            return LengthBucketSampler(lengths, self.args.train_batch_size, seed)

    LengthBucketedTrainer.__name__ = f"LengthBucketed{trainer_class.__name__}"
    return LengthBucketedTrainer
