"""Less padding in training batches (``training.batching``).

``by_length``: batches of rows of similar length.

The collator pads each batch to its longest row, so a random batch of short and long notes
spends much of its compute on padding (the demo's batches are 70% real tokens). Grouping rows
of similar length removes most of it. Unlike transformers' ``group_by_length`` sampler, which
runs each megabatch from its longest batch to its shortest and draws from the global RNG, this
one shuffles the batches themselves with a generator seeded from the run's seed and the epoch:
no length curriculum inside an epoch, and a resumed run sees exactly the same batches.

``random_halves`` (classification): the batches stay random, and each step computes its batch
as two halves of sorted length, each padded to its own longest row, with the halves' losses
weighted by their share of the rows: the same rows, the same mean loss and so the same gradient
as one pass, with about a sixth fewer padded tokens on the demo's notes. Only float rounding and
the dropout masks drawn differ from ``random``.
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


def halved(trainer_class: type[Any]) -> type[Any]:
    """``trainer_class`` whose training step computes a right-padded batch as two halves of
    sorted length (``batching: random_halves``). A left-padded batch, a batch of under 4 rows
    or a data-parallel run keeps the one pass (under DDP each backward would synchronise)."""

    class HalvedTrainer(trainer_class):
        _loss_weight = 1.0

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            import torch

            mask = inputs.get("attention_mask")
            if (mask is None or mask.dim() != 2 or len(mask) < 4 or not bool(mask[:, 0].all())
                    or self.accelerator.num_processes > 1):
                return super().training_step(model, inputs, num_items_in_batch)
            lengths = mask.sum(dim=1)
            order = torch.argsort(lengths, stable=True)
            total = None
            for part in torch.tensor_split(order, 2):
                width = int(lengths[part].max())
                half = {key: _rows(value, part, width, mask.shape[1]) for key, value in inputs.items()}
                self._loss_weight = len(part) / len(order)
                try:
                    loss = super().training_step(model, half, num_items_in_batch)
                finally:
                    self._loss_weight = 1.0
                total = loss if total is None else total + loss
            return total

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                          num_items_in_batch=num_items_in_batch)
            weight = self._loss_weight
            if weight == 1.0:
                return result
            if return_outputs:
                return result[0] * weight, result[1]
            return result * weight

    HalvedTrainer.__name__ = f"Halved{trainer_class.__name__}"
    return HalvedTrainer


def _rows(value: Any, rows: Any, width: int, padded: int) -> Any:
    """``rows`` of one input, cut to ``width`` columns when it is laid out per token."""
    import torch

    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return value
    value = value[rows]
    return value[:, :width] if value.dim() >= 2 and value.shape[1] == padded else value
