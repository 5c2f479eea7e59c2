"""The built-in tuners that are not peft methods: ``adapter``, ``freeze``, ``full``.

Each trains on a tiny random model through ``auditft.training.train`` (loss falls), saves
safetensors, and ``tuner.load`` gives back a model with identical logits.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from auditft.errors import ModelError, SuiteError
from auditft.testing import (
    isolated_plugin_manager,
    tiny_causal_lm,
    toy_classification_data,
    toy_generation_data,
    write_suite,
)

CLS_TRAINING = {"epochs": 1, "max_steps": 32, "learning_rate": 1e-2, "batch_size": 16, "max_length": 32,
                "eval_batch_size": 64, "logging_steps": 8, "checkpoint_steps": 0}
GEN_TRAINING = {"epochs": 1, "max_steps": 20, "learning_rate": 3e-3, "batch_size": 8, "max_length": 32,
                "eval_batch_size": 64, "logging_steps": 5, "checkpoint_steps": 0}


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pm():
    return isolated_plugin_manager()


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory, tiny_model_dir):
    directory = tmp_path_factory.mktemp("cls")
    toy_classification_data(directory)
    return directory, tiny_model_dir


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gen")
    toy_generation_data(directory)
    return directory, tiny_causal_lm(directory / "model")


def make_job(where: tuple[Path, Path], pm: Any, kind: str, options: dict[str, Any], training: dict[str, Any],
             name: str, *, task: str = "classification", resume: bool = False) -> tuple[Any, Any]:
    """(tuner, TuneJob) for ``kind`` on the toy data, as ``auditft.run`` builds them."""
    from auditft.data import load_data
    from auditft.jobs import TuneJob
    from auditft.models import resolve_model
    from auditft.suite import load_suite

    directory, model_dir = where
    extra = {} if task == "classification" else {
        "task": "generation",
        "data": {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7},
        "audits": [{"kind": "accuracy", "gates": [{"metric": "exact_match", "min": 0.5, "rationale": "toy"}]}]}
    suite_path = write_suite(directory / f"{name}.yaml", model_dir=model_dir, name=name,
                             tuner={"kind": kind, "options": options, "training": training}, **extra)
    suite = load_suite(suite_path, pm)
    entry = pm.tuners.get(kind)
    validated = entry.options.model_validate(options)
    run = directory / name
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    job = TuneJob(suite=suite, task=suite.task, base=resolve_model(str(model_dir)), data=load_data(suite),
                  training=suite.tuner.training, options=validated, seed=suite.seed,
                  adapter_dir=run / "adapter", work_dir=run / "work", resume=resume)
    return entry.factory(validated), job


@contextmanager
def capture_trained_model():
    """Hand out the model the tuner passes to ``auditft.training.train`` (trained in place)."""
    from auditft import training

    seen: dict[str, Any] = {}
    original = training.train

    def spy(job: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        seen["model"] = model
        return original(job, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "train", spy)
        yield seen


def run_tuner(where, pm, kind, options, training, name, task="classification"):
    from transformers import set_seed

    tuner, job = make_job(where, pm, kind, options, training, name, task=task)
    set_seed(job.seed)
    with capture_trained_model() as seen:
        result = tuner.tune(job)
    model = seen["model"].eval()
    return SimpleNamespace(tuner=tuner, job=job, result=result, model=model)


@pytest.fixture(scope="module")
def adapter_cls(cls_dir, pm):
    # no loss-fall check here (see the test): a short run is enough for save/reload
    return run_tuner(cls_dir, pm, "adapter", {"reduction_factor": 4},
                     {**CLS_TRAINING, "max_steps": 12, "logging_steps": 4}, "adapter-cls")


@pytest.fixture(scope="module")
def adapter_gen(gen_dir, pm):
    return run_tuner(gen_dir, pm, "adapter", {"reduction_factor": 4, "placement": "pfeiffer", "activation": "gelu"},
                     {**GEN_TRAINING, "learning_rate": 5e-2}, "adapter-gen", task="generation")


@pytest.fixture(scope="module")
def freeze_cls(cls_dir, pm):
    return run_tuner(cls_dir, pm, "freeze", {"trainable_layers": 1}, {**CLS_TRAINING, "learning_rate": 2e-2},
                     "freeze-cls")


@pytest.fixture(scope="module")
def full_cls(cls_dir, pm):
    return run_tuner(cls_dir, pm, "full", {"warn_above_mb": 0.05}, CLS_TRAINING, "full-cls")


@pytest.fixture(scope="module")
def full_gen(gen_dir, pm):
    return run_tuner(gen_dir, pm, "full", {}, GEN_TRAINING, "full-gen", task="generation")


# -- helpers -----------------------------------------------------------------------------

def batch(run: Any, tokenizer: Any) -> dict[str, torch.Tensor]:
    data = run.job.data
    if run.job.task == "classification":
        texts = [ex.text for ex in data.test[:12]]
    else:
        texts = [f"{ex.text} {ex.response}" for ex in data.test[:12]]
    return tokenizer(texts, padding=True, return_tensors="pt")


def logits(model: Any, enc: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return model(**enc).logits


def assert_reloads_identically(run: Any) -> tuple[Any, Any]:
    model, tokenizer = run.tuner.load(run.job.base, run.job.adapter_dir, run.job.data)
    assert not model.training
    enc = batch(run, tokenizer)
    trained, reloaded = logits(run.model, enc), logits(model, enc)
    assert torch.equal(trained, reloaded), (trained - reloaded).abs().max()
    return model, tokenizer


def assert_loss_falls(result: Any, *, factor: float = 0.85, by: float = 0.0) -> None:
    """The last logged training loss is below ``factor`` x the first (and ``by`` below it)."""
    curve = result.loss_curve
    assert len(curve) >= 3, curve
    first, last = curve[0][1], curve[-1][1]
    assert last < factor * first and last < first - by, curve


def saved_keys(adapter_dir: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        return set(f.keys())


def meta(adapter_dir: Path) -> dict[str, Any]:
    return json.loads((adapter_dir / "auditft_adapter.json").read_text())


# -- registration ----------------------------------------------------------------------------

def test_registered_for_both_tasks_with_strict_options(pm):
    from pydantic import ValidationError

    for kind in ("adapter", "freeze", "full"):
        entry = pm.tuners.get(kind)
        assert entry is not None and entry.plugin.endswith(kind), kind
        assert set(entry.tasks) == {"classification", "generation"}
        with pytest.raises(ValidationError):
            entry.options.model_validate({"no_such_option": 1})
    assert pm.tuners.get("adapter").options.model_validate({}).reduction_factor == 16
    assert pm.tuners.get("freeze").options.model_validate({}).trainable_layers == 2


# -- adapter -------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["classification", "generation"])
def test_adapter_starts_as_the_base_model(task, cls_dir, gen_dir, pm):
    from auditft.default_plugins.tuners.adapter import AdapterOptions, AdapterTuner
    from auditft.models import load_for_task, load_tokenizer, resolve_model

    base = resolve_model(str((cls_dir if task == "classification" else gen_dir)[1]))
    torch.manual_seed(0)
    model = load_for_task(base, task, ["routine", "urgent"]).eval()
    enc = load_tokenizer(base)(["severe pain since yesterday", "mild cough"], padding=True, return_tensors="pt")
    before = logits(model, enc)
    AdapterTuner(AdapterOptions(reduction_factor=4)).prepare(model, SimpleNamespace(task=task))
    assert torch.equal(before, logits(model, enc))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    heads = ("classifier.", "bert.pooler.") if task == "classification" else ()
    assert trainable and all(".adapter." in n or n.startswith(heads) for n in trainable), trainable
    adapted = {n.split(".adapter.")[0] for n in trainable if ".adapter." in n}
    if task == "classification":  # houlsby: attention output and FFN output of both blocks
        assert adapted == {f"bert.encoder.layer.{i}.{m}" for i in (0, 1) for m in ("attention.output.dense", "output.dense")}
    else:
        assert adapted == {f"model.layers.{i}.{m}" for i in (0, 1) for m in ("self_attn.o_proj", "mlp.down_proj")}


def test_adapter_classification_trains_saves_only_adapters_and_reloads(adapter_cls):
    run = adapter_cls
    # Bottleneck adapters on the tiny *random* BERT do not lower the classification loss in a
    # test-sized budget (its sub-layer outputs are ~1% of the residual stream; 150 plain
    # AdamW steps stay at ln 2), so this checks that training moved the adapters away from
    # the identity instead; the loss check is on the generation task below.
    assert run.result.steps == 12 and run.result.loss_curve
    ups = [p for n, p in run.model.named_parameters() if n.endswith(".adapter.up.weight")]
    assert len(ups) == 4 and all(p.abs().sum() > 0 for p in ups)
    keys = saved_keys(run.job.adapter_dir)
    assert keys == {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert all(".adapter." in k or k.startswith(("classifier.", "bert.pooler.")) for k in keys), keys
    assert {"classifier.weight", "bert.pooler.dense.weight"} <= keys
    assert run.result.trainable_parameters == sum(p.numel() for n, p in run.model.named_parameters() if n in keys)
    assert run.result.trainable_parameters < run.result.total_parameters
    config = json.loads((run.job.adapter_dir / "adapter_config.json").read_text())
    assert config["placement"] == "houlsby" and config["reduction_factor"] == 4 and config["hidden_size"] == 32
    assert len(config["targets"]) == 4 and set(config["bottleneck"].values()) == {8}
    assert sorted(config["tensors"]) == sorted(keys)
    assert meta(run.job.adapter_dir)["format"] == "bottleneck"
    assert run.result.facts["adapter"]["adapted_modules"] == 4
    assert_reloads_identically(run)


def test_adapter_generation_trains_reloads_and_disables_to_the_base(adapter_gen):
    from auditft.models import load_causal_lm

    run = adapter_gen
    # frozen tied embeddings of norm ~0.1 cap the logits of the random LM near uniform
    # (ln V = 4.8): the adapters can only move the loss by a little, but they must
    assert_loss_falls(run.result, factor=1.0, by=0.05)
    keys = saved_keys(run.job.adapter_dir)
    assert keys and all(".adapter." in k and ".mlp.down_proj." in k for k in keys), keys  # pfeiffer, no head
    model, tokenizer = assert_reloads_identically(run)
    enc = batch(run, tokenizer)
    base = load_causal_lm(run.job.base).eval()
    with model.disable_adapter():  # what ModelSession uses for the base side of generation audits
        assert torch.equal(logits(model, enc), logits(base, enc))
    assert not torch.equal(logits(model, enc), logits(base, enc))
    out = model.generate(**tokenizer(["what is the capital of peru ?"], return_tensors="pt"), max_new_tokens=3,
                         do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] >= 1


def test_adapter_resumes_from_a_trainer_checkpoint(cls_dir, pm):
    """Kill after step 3 (simulated: drop the newer checkpoint) and resume: the Trainer loads
    the checkpoint into the adapted model, and the result equals an uninterrupted run."""
    from safetensors.torch import load_file
    from transformers import set_seed

    training = {**CLS_TRAINING, "max_steps": 6, "checkpoint_steps": 3, "lr_scheduler": "constant", "logging_steps": 1}
    tuner, job = make_job(cls_dir, pm, "adapter", {"reduction_factor": 4}, training, "adapter-resume")
    set_seed(job.seed)
    straight = tuner.tune(job)
    checkpoints = job.work_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-3", "checkpoint-6"]
    expected = load_file(str(job.adapter_dir / "adapter_model.safetensors"))
    shutil.rmtree(checkpoints / "checkpoint-6")
    tuner, job = make_job(cls_dir, pm, "adapter", {"reduction_factor": 4}, training, "adapter-resume", resume=True)
    set_seed(job.seed + 1)  # the checkpoint's RNG state must win
    resumed = tuner.tune(job)
    assert resumed.facts["resumed_from_step"] == 3 and resumed.steps == 6
    assert [s for s, _ in resumed.loss_curve] == [1, 2, 3, 4, 5, 6]  # state restored from the checkpoint
    got = load_file(str(job.adapter_dir / "adapter_model.safetensors"))
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-6), name
    assert resumed.loss_curve[-1][1] == pytest.approx(straight.loss_curve[-1][1], abs=1e-5)


def test_adapter_unknown_architecture_names_the_option():
    from transformers import GPT2Config, GPT2LMHeadModel

    from auditft.default_plugins.tuners.adapter import AdapterOptions, resolve_targets

    model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, n_positions=16))
    with pytest.raises(SuiteError, match=r"tuner\.options\.target_modules.*'gpt2'"):
        resolve_targets(model, AdapterOptions())
    with pytest.raises(SuiteError, match="Conv1D"):  # GPT-2's projections are not nn.Linear
        resolve_targets(model, AdapterOptions(target_modules=["attn.c_proj"]))
    with pytest.raises(SuiteError, match="no module 'mlp.nope'"):
        resolve_targets(model, AdapterOptions(target_modules=["mlp.nope"]))


def test_adapter_load_refuses_tensors_that_do_not_land(adapter_cls, tmp_path):
    from safetensors.torch import load_file, save_file

    run = adapter_cls
    broken = tmp_path / "adapter"
    shutil.copytree(run.job.adapter_dir, broken)
    tensors = load_file(str(broken / "adapter_model.safetensors"))
    tensors["bert.encoder.layer.7.output.dense.adapter.up.weight"] = torch.zeros(1)
    save_file(tensors, str(broken / "adapter_model.safetensors"))
    with pytest.raises(ModelError, match="unlisted bert.encoder.layer.7"):
        run.tuner.load(run.job.base, broken, run.job.data)
    config = json.loads((broken / "adapter_config.json").read_text())
    config["tensors"].append("bert.encoder.layer.7.output.dense.adapter.up.weight")
    (broken / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="match no parameter"):
        run.tuner.load(run.job.base, broken, run.job.data)


# -- freeze --------------------------------------------------------------------------------

def test_freeze_trains_the_last_block_and_head_and_records_them(freeze_cls):
    run = freeze_cls
    assert_loss_falls(run.result)
    unfrozen = {g["module"]: g["parameters"] for g in run.result.facts["unfrozen"]}
    assert set(unfrozen) == {"bert.encoder.layer.1", "bert.pooler.dense", "classifier"}
    keys = saved_keys(run.job.adapter_dir)
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert keys == trainable
    assert all(k.startswith(("bert.encoder.layer.1.", "bert.pooler.", "classifier.")) for k in keys), keys
    assert sum(unfrozen.values()) == run.result.trainable_parameters < run.result.total_parameters
    config = json.loads((run.job.adapter_dir / "adapter_config.json").read_text())
    assert config["unfrozen"] == run.result.facts["unfrozen"] and sorted(config["tensors"]) == sorted(keys)
    assert meta(run.job.adapter_dir)["format"] == "partial"
    assert_reloads_identically(run)


def test_freeze_selection_options(cls_dir, gen_dir):
    from auditft.default_plugins.tuners.freeze import FreezeOptions, select
    from auditft.models import load_for_task, resolve_model

    bert = load_for_task(resolve_model(str(cls_dir[1])), "classification", ["a", "b"])
    names = select(bert, FreezeOptions(trainable_layers=0, trainable_modules=["*.attention.self.query.*"],
                                       train_embeddings=True), "classification")
    assert {n.rsplit(".", 2)[0] for n in names if "layer." in n} == {f"bert.encoder.layer.{i}.attention.self" for i in (0, 1)}
    assert "bert.embeddings.word_embeddings.weight" in names and "classifier.weight" in names
    with pytest.raises(SuiteError, match=r"tuner\.options\.trainable_modules.*'nope'"):
        select(bert, FreezeOptions(trainable_modules=["nope"]), "classification")
    with pytest.raises(SuiteError, match=r"trainable_layers.*3 blocks asked for, the model has 2"):
        select(bert, FreezeOptions(trainable_layers=3), "classification")
    llama = load_for_task(resolve_model(str(gen_dir[1])), "generation", [])
    with pytest.raises(SuiteError, match="nothing to train"):
        select(llama, FreezeOptions(trainable_layers=0), "generation")
    assert all(n.startswith("model.layers.1.") for n in select(llama, FreezeOptions(trainable_layers=1), "generation"))


# -- full ----------------------------------------------------------------------------------

def test_full_classification_trains_everything_and_reloads(full_cls):
    run = full_cls
    assert_loss_falls(run.result)
    assert run.result.trainable_parameters == run.result.total_parameters
    assert (run.job.adapter_dir / "model.safetensors").is_file()
    assert not list(run.job.adapter_dir.glob("*.bin"))
    assert meta(run.job.adapter_dir)["format"] == "full"
    # warn_above_mb=0.05 is below the tiny model's ~0.2 MB: the warning is in the facts
    assert run.result.facts["model_bytes"] > 50_000
    assert "warn_above_mb=0.05" in run.result.facts["warnings"][0]
    model, tokenizer = assert_reloads_identically(run)
    assert model.config.id2label == {0: "routine", 1: "urgent"}
    texts = [ex.text for ex in run.job.data.test[:8]]
    from auditft.models import load_tokenizer

    assert tokenizer(texts)["input_ids"] == load_tokenizer(run.job.base)(texts)["input_ids"]


def test_full_generation_keeps_tied_embeddings_and_reloads(full_gen):
    run = full_gen
    assert_loss_falls(run.result, factor=0.9)
    assert run.result.trainable_parameters == run.result.total_parameters
    assert "warnings" not in run.result.facts
    model, tokenizer = assert_reloads_identically(run)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert torch.equal(model.lm_head.weight, run.model.lm_head.weight)
    assert tokenizer.chat_template  # the tokenizer (with its chat template) is saved with the model


def test_full_load_refuses_a_classifier_with_other_labels(full_cls):
    from dataclasses import replace

    run = full_cls
    data = replace(run.job.data, labels=["a", "b", "c"])
    with pytest.raises(ModelError, match="labels"):
        run.tuner.load(run.job.base, run.job.adapter_dir, data)
