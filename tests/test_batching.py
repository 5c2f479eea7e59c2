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


class _Classifier(torch.nn.Module):
    """A tiny right-padded token classifier: mean of the real tokens' embeddings, then a linear
    head; it records the width of every batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(50, 6)
        self.head = torch.nn.Linear(6, 2)
        self.widths: list[tuple[int, int]] = []

    def forward(self, input_ids, attention_mask, labels):
        self.widths.append(tuple(input_ids.shape))
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        logits = self.head(pooled)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def _step(trainer_class, tmp_path, batch):
    from transformers import TrainingArguments

    model = _Classifier()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", remove_unused_columns=False)
    trainer = trainer_class(model=model, args=args)
    trainer.current_gradient_accumulation_steps = 1  # the Trainer sets it per step in train()
    loss = trainer.training_step(model, dict(batch))
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters()}, model.widths


def test_random_halves_gives_one_pass_gradient_with_less_padding(tmp_path):
    """``batching: random_halves``: the same rows, loss and gradient as one pass over the batch,
    computed as two halves of sorted length, each padded to its own longest row."""
    from transformers import Trainer

    from auditft.batching import halved

    rng = random.Random(3)
    lengths = [rng.randint(2, 30) for _ in range(9)]  # an odd count: halves of 4 and 5 rows
    width = max(lengths)
    ids = torch.tensor([[rng.randint(1, 49) for _ in range(n)] + [0] * (width - n) for n in lengths])
    mask = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([i % 2 for i in range(9)])}
    loss, grads, widths = _step(Trainer, tmp_path / "one", batch)
    halves_loss, halves_grads, halves_widths = _step(halved(Trainer), tmp_path / "halves", batch)
    assert widths == [(9, width)]
    ordered = sorted(lengths)
    assert halves_widths == [(5, ordered[4]), (4, ordered[-1])]  # torch.tensor_split: 5 then 4 rows
    assert sum(r * w for r, w in halves_widths) < 9 * width
    assert halves_loss == pytest.approx(loss, rel=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(halves_grads[name], grad, rtol=1e-5, atol=1e-7)
    # a left-padded batch (causal LMs) keeps the one pass
    left = {**batch, "input_ids": ids.flip(1), "attention_mask": mask.flip(1)}
    assert _step(halved(Trainer), tmp_path / "left", left)[2] == [(9, width)]


def test_random_halves_is_refused_for_generation(tmp_path, pm):
    from auditft.testing import tiny_causal_lm, toy_generation_data, write_suite

    model = tiny_causal_lm(tmp_path / "lm")
    toy_generation_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=model, task="generation",
                        data={"train": "train.jsonl", "test": "test.jsonl"},
                        tuner={"kind": "lora", "training": {"batching": "random_halves"}},
                        audits=[{"kind": "accuracy", "gates": [{"metric": "answer_contained", "min": 0.5, "rationale": "t"}]}])
    with pytest.raises(SuiteError, match=r"tuner\.training\.batching: random_halves is for classification"):
        load_suite(suite, pm)
