"""``training.batching: by_length``: batches of similar length, seeded, reshuffled per epoch,
and the same batches after a resume (the Trainer skips the batches already seen)."""

from __future__ import annotations

import random

import pytest
import yaml

from auditft.batching import BUCKET_BATCHES, LengthBucketSampler, bucketed
from auditft.errors import SuiteError
from auditft.suite import load_suite

torch = pytest.importorskip("torch")


def _lengths(n: int = 1000, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(8, 64) for _ in range(n)]


def _batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def _padded(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_every_row_once_in_batches_with_little_padding():
    lengths = _lengths()
    order = LengthBucketSampler(lengths, 16, seed=13).order()
    assert sorted(order) == list(range(len(lengths)))
    shuffled = list(range(len(lengths)))
    random.Random(1).shuffle(shuffled)
    real = sum(lengths)
    bucketed_share = real / _padded(lengths, _batches(order, 16))
    random_share = real / _padded(lengths, _batches(shuffled, 16))
    assert random_share < 0.7 and bucketed_share > 0.95


def test_the_order_is_seeded_new_each_epoch_and_not_a_length_curriculum():
    lengths = _lengths()
    sampler = LengthBucketSampler(lengths, 16, seed=13)
    first = sampler.order()
    assert LengthBucketSampler(lengths, 16, seed=13).order() == first  # a resumed run sees the same
    assert LengthBucketSampler(lengths, 16, seed=14).order() != first
    sampler.set_epoch(1)
    assert sampler.order() != first and sorted(sampler.order()) == sorted(first)
    # batches of one bucket are not run longest to shortest (transformers' group_by_length is)
    widths = [max(lengths[i] for i in b) for b in _batches(first, 16)[:BUCKET_BATCHES]]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)


def test_the_one_short_batch_comes_last_so_batch_boundaries_hold():
    lengths = _lengths(1000 + 5)  # 62 full batches of 16 and one of 13
    for epoch in range(3):
        sampler = LengthBucketSampler(lengths, 16, seed=3)
        sampler.set_epoch(epoch)
        batches = _batches(sampler.order(), 16)
        assert [len(b) for b in batches] == [16] * 62 + [13]
        # full batches come from one bucket each: their rows are sorted neighbours
        assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 6 for b in batches[:-1])


def test_the_trainer_uses_it_and_a_resume_skips_to_the_same_batches(tmp_path):
    from accelerate import skip_first_batches
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    lengths = _lengths(200, seed=5)
    data = Dataset.from_list([{"input_ids": list(range(n)), "label": i % 2, "row": i} for i, n in enumerate(lengths)])

    def collate(rows):  # pads like DataCollatorWithPadding and keeps the widths visible
        width = max(len(r["input_ids"]) for r in rows)
        return {"input_ids": torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows]),
                "labels": torch.tensor([r["label"] for r in rows]), "row": [r["row"] for r in rows]}

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, use_cpu=True,
                             report_to="none", seed=7, remove_unused_columns=False)
    trainer = bucketed(Trainer, seed=7)(model=torch.nn.Linear(1, 1), args=args, train_dataset=data,
                                        data_collator=collate)
    loader = trainer.get_train_dataloader()
    loader.set_epoch(0)  # the Trainer sets the epoch before every pass
    shapes = [batch["input_ids"].shape for batch in loader]
    assert len(shapes) == 25 and sum(s[0] * s[1] for s in shapes) < 0.8 * _padded(lengths, _batches(list(range(200)), 8))
    loader.set_epoch(0)
    epoch0 = [batch["row"] for batch in loader]
    assert sorted(r for b in epoch0 for r in b) == list(range(200)) and [len(b) for b in epoch0] == [8] * 25
    # as Trainer._run_epoch resumes: skip the batches already trained, then set the epoch
    skipping = skip_first_batches(loader, 10)
    skipping.set_epoch(0)
    assert [batch["row"] for batch in skipping] == epoch0[10:]
    loader.set_epoch(1)  # what the Trainer does at each epoch
    assert [batch["row"] for batch in loader] != epoch0


def test_batching_validates_and_names_the_key_path(toy, pm):
    _, suite = toy
    raw = yaml.safe_load(suite.read_text())
    assert load_suite(suite, pm).tuner.training.batching == "random"  # the default keeps old runs' order
    raw["tuner"]["training"]["batching"] = "by_length"
    suite.write_text(yaml.safe_dump(raw))
    assert load_suite(suite, pm).tuner.training.batching == "by_length"
    raw["tuner"]["training"]["batching"] = "sideways"
    suite.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError) as err:
        load_suite(suite, pm)
    assert "tuner.training.batching" in str(err.value) and "'by_length'" in str(err.value)
    assert "\n" not in str(err.value)
