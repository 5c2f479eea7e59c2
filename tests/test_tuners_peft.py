"""The built-in peft tuners (``qlora``, ``prefix``, ``ptuning``, ``ia3``) and the ``prompt``
baseline, on tiny random models.

Each peft kind, on each task it claims: trains (the loss on a fixed training batch falls),
writes safetensors into the adapter directory, and loads back through ``tuner.load`` to the
very same logits. ``qlora`` shows 4-bit linear layers and a full-precision head. ``prompt``
runs a whole generation suite with zero trained parameters, and is refused for
classification by ``auditft validate``.

Kept small on purpose (tiny models, a handful of steps): the file must stay well under a
minute on two busy cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditft.testing import (
    isolated_plugin_manager,
    tiny_causal_lm,
    tiny_classifier,
    toy_classification_data,
    toy_generation_data,
    write_suite,
)

#: options per kind for the tiny models (few virtual tokens: max_length is small)
OPTIONS: dict[str, dict[str, Any]] = {
    "qlora": {"r": 4, "alpha": 8, "dropout": 0.0, "double_quant": True},
    "prefix": {"num_virtual_tokens": 4},
    "ptuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "ia3": {},
}
#: full-batch steps (batch_size >= train rows) on a small train split: every step descends the
#: very loss that is measured, so a handful of steps lowers it reliably on the tiny models
TRAINING = {"max_steps": 5, "learning_rate": 0.02, "batch_size": 32, "max_length": 24,
            "logging_steps": 1, "eval_batch_size": 32}
CASES = [(kind, task) for kind in OPTIONS for task in ("classification", "generation")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tuners")
    tiny_classifier(root / "cls-model")
    tiny_causal_lm(root / "lm-model")
    toy_classification_data(root / "cls", n_train=24, n_test=12)
    toy_generation_data(root / "gen", copies=1)
    return {"root": root, "classification": root / "cls", "generation": root / "gen",
            "classification_model": root / "cls-model", "generation_model": root / "lm-model"}


def _suite(world: dict[str, Path], name: str, task: str, tuner: dict[str, Any], **extra: Any) -> Path:
    directory = world[task]
    data: dict[str, Any] = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7}
    if task == "classification":
        data |= {"labels": ["routine", "urgent"], "group_columns": ["sex", "band"]}
    return write_suite(directory / f"{name}.yaml", name=name, task=task, model_dir=world[f"{task}_model"],
                       data=data, tuner=tuner, **extra)


def _batch_loss(model: Any, batch: dict[str, Any]) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        return float(model(**batch).loss)


def _tune(world: dict[str, Path], kind: str, task: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the tuner directly on a TuneJob; capture the trained in-memory model and the
    loss on the whole train split (one batch) before and after training."""
    from auditft import training
    from auditft.data import load_data
    from auditft.jobs import TuneJob
    from auditft.models import resolve_model
    from auditft.suite import load_suite

    pm = isolated_plugin_manager()
    path = _suite(world, f"{kind}-{task}", task, {"kind": kind, "options": OPTIONS[kind], "training": TRAINING})
    suite = load_suite(path, pm)
    data = load_data(suite)
    base = resolve_model(suite.model.base, base_dir=path.parent)
    entry = pm.tuners.get(kind)
    options = entry.options.model_validate(suite.tuner.options)
    tuner = entry.factory(options)
    seen: dict[str, Any] = {}
    real_train = training.train

    def spy(job: Any, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any, **kwargs: Any) -> Any:
        batch = training.collator(job.task, tokenizer)([train_ds[i] for i in range(len(train_ds))])
        seen["before"] = _batch_loss(model, batch)
        result = real_train(job, model, tokenizer, train_ds, eval_ds, **kwargs)
        seen["after"] = _batch_loss(model, batch)
        seen["model"], seen["tokenizer"] = model, tokenizer
        return result

    monkeypatch.setattr(training, "train", spy)
    adapter_dir = path.parent / f"{kind}-{task}-adapter"
    adapter_dir.mkdir()
    import torch

    torch.manual_seed(suite.seed)
    result = tuner.tune(TuneJob(suite=suite, task=task, base=base, data=data, training=suite.tuner.training,
                                options=options, seed=suite.seed, adapter_dir=adapter_dir,
                                work_dir=path.parent / f"{kind}-{task}-work"))
    return {**seen, "tuner": tuner, "result": result, "adapter_dir": adapter_dir, "base": base, "data": data}


def _logits(model: Any, tokenizer: Any, texts: list[str]) -> Any:
    import torch

    enc = tokenizer(texts, padding=True, truncation=True, max_length=24, return_tensors="pt")
    model.eval()
    with torch.inference_mode():
        return model(**enc).logits


@pytest.mark.parametrize(("kind", "task"), CASES, ids=[f"{k}-{t}" for k, t in CASES])
def test_tuner_trains_saves_and_reloads_identically(world, kind, task, monkeypatch):
    import torch

    run = _tune(world, kind, task, monkeypatch)
    result = run["result"]
    assert run["after"] < run["before"], (kind, task, run["before"], run["after"])
    assert result.steps == TRAINING["max_steps"] and result.loss_curve
    assert 0 < result.trainable_parameters < result.total_parameters

    files = {p.name for p in run["adapter_dir"].iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "auditft_adapter.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    meta = json.loads((run["adapter_dir"] / "auditft_adapter.json").read_text())
    assert meta["kind"] == kind and meta["task"] == task

    texts = [ex.text for ex in run["data"].test[:6]]
    trained = _logits(run["model"], run["tokenizer"], texts)
    reloaded_model, tokenizer = run["tuner"].load(run["base"], run["adapter_dir"], run["data"])
    reloaded = _logits(reloaded_model, tokenizer, texts)
    assert torch.allclose(trained, reloaded, atol=1e-6, rtol=0), (trained - reloaded).abs().max()

    if task == "generation":  # the adapter is live: switching it off changes the logits
        with reloaded_model.disable_adapter():
            plain = _logits(reloaded_model, tokenizer, texts)
        # p-tuning returns logits for its virtual tokens too: compare the real positions
        assert not torch.allclose(plain, reloaded[:, -plain.shape[1]:], atol=1e-4)

    if kind == "qlora":
        import bitsandbytes as bnb

        from auditft.default_plugins.tuners.qlora import packable

        quantized = [n for n, m in reloaded_model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
        assert quantized and result.facts["quantized_linear_layers"] > 0
        # layers bitsandbytes cannot pack (the tiny models' 32-wide inputs) stay in full
        # precision and are named; the wide ones are 4-bit (the logits above ran through them)
        kept = result.facts["full_precision_layers"]
        assert kept, "the tiny models have 32-wide layers: some must be kept"
        modules = dict(reloaded_model.named_modules())
        for name in kept:
            # a LoRA-targeted layer is wrapped: the kept linear layer is its base_layer
            layer = next(m for n, m in modules.items() if n.endswith((name, name + ".base_layer"))
                         and type(m) is torch.nn.Linear)
            assert not packable(layer.in_features, layer.out_features)
        assert all(packable(modules[n].in_features, modules[n].out_features) for n in quantized)
        # the CPU-specific bf16 repacking stays off: the same float32 numbers on every CPU
        assert not any(getattr(modules[n], "support_avx512bf16_for_cpu", False) for n in quantized)
        assert result.facts["memory_footprint_bytes"] < result.facts["fp32_footprint_bytes"]
        assert not any(("classifier" in n or "lm_head" in n) for n in quantized), quantized
        if task == "classification":
            heads = [m for n, m in reloaded_model.named_modules()
                     if n.endswith("classifier") or n.endswith("classifier.modules_to_save.default")]
            assert heads and all(not isinstance(m, bnb.nn.Linear4bit) for m in heads)
            saved = reloaded_model.base_model.model.classifier.modules_to_save["default"]
            assert isinstance(saved, torch.nn.Linear) and saved.weight.dtype == torch.float32


def test_option_models_reject_bad_options():
    from pydantic import ValidationError

    pm = isolated_plugin_manager()
    for kind, bad in [("qlora", {"double_quant": True, "bits": 8}), ("prefix", {"virtual_tokens": 3}),
                      ("ptuning", {"encoder_reparameterization_type": "GRU"}),
                      ("ia3", {"target_modules": ["query"], "feedforward_modules": ["output.dense"]}),
                      ("prompt", {"shots": -1})]:
        with pytest.raises(ValidationError):
            pm.tuners.get(kind).options.model_validate(bad)
    assert pm.tuners.get("prompt").tasks == ("generation",)
    for kind in OPTIONS:
        assert set(pm.tuners.get(kind).tasks) == {"classification", "generation"}


def test_prompt_baseline_end_to_end(world):
    from auditft.models import load_causal_lm, resolve_model
    from auditft.run import execute, prepare
    from auditft.training import count_parameters

    pm = isolated_plugin_manager()
    suite = _suite(world, "prompt-baseline", "generation",
                   {"kind": "prompt", "options": {"shots": 2, "system": "answer with one word"},
                    "training": {"max_length": 96, "eval_batch_size": 32}},
                   generation={"max_new_tokens": 3},
                   audits=[{"kind": "accuracy", "options": {"n_boot": 100, "max_examples": 2},
                            "gates": [{"metric": "exact_match", "min": 0.0, "rationale": "baseline"}]}])
    report = execute(prepare(suite, pm), pm, reports=world["root"] / "reports", author="alice")
    tuning = report["tuner"]
    assert tuning["trainable_parameters"] == 0 and tuning["steps"] == 0
    base = resolve_model(str(world["generation_model"]))
    assert tuning["total_parameters"] == count_parameters(load_causal_lm(base))[1]
    assert tuning["facts"]["shots"] == 2 and tuning["facts"]["prompts_over_max_length"] == 0
    assert "exact_match" in report["audits"]["accuracy"]["metrics"]

    run_dir = world["root"] / "reports" / report["run_id"]
    template = json.loads((run_dir / "adapter" / "prompt.json").read_text())
    assert template["system"] == "answer with one word" and len(template["shots"]) == 2
    assert json.loads((run_dir / "adapter" / "auditft_adapter.json").read_text())["format"] == "prompt"
    manifest = (run_dir / "manifest.json").read_text()
    assert "prompt.json" in manifest

    # the adapter side is asked with the shots as earlier turns; the same for the same seed
    tuner = pm.tuners.get("prompt").factory(pm.tuners.get("prompt").options())
    chat = tuner.chat(run_dir / "adapter", "what is the capital of oman ?", None)
    assert chat[0] == {"role": "system", "content": "answer with one word"}
    assert [m["role"] for m in chat[1:]] == ["user", "assistant"] * 2 + ["user"]
    assert [(m["content"]) for m in chat[1:5:2]] == [s["prompt"] for s in template["shots"]]


def test_prompt_refused_for_classification(world):
    from click.testing import CliRunner

    from auditft.cli import cli

    suite = _suite(world, "prompt-cls", "classification", {"kind": "prompt"})
    result = CliRunner().invoke(cli, ["validate", str(suite)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "prompt" in lines[0] and "does not support task 'classification'" in lines[0]


class _Backbone:
    """A stand-in for a transformers backbone: only its forward signature matters here."""

    def __init__(self, argument: str) -> None:
        self.seen: dict[str, Any] = {}
        namespace: dict[str, Any] = {}
        exec(f"def forward(self, input_ids=None, {argument}=None, **kwargs):\n"
             f"    self.seen.update({argument}={argument}, **kwargs)\n    return 'out'", namespace)
        type(self).forward = namespace["forward"]  # a fresh class per argument name below


def test_prefix_bridge_renames_only_a_cache_backbone():
    """transformers < 5.24 names the argument past_key_values (left alone); 5.24 names it cache
    (bridged: peft's past_key_values arrives as cache); a backbone with neither has no bridge."""
    from auditft.default_plugins.tuners.prefix import bridge_prefix_cache, prefix_argument

    class Wrapper:
        transformer_backbone_name = "bert"

        def __init__(self, backbone: Any) -> None:
            self.base_model = type("Base", (), {"get_submodule": lambda _self, name: backbone})()

    for argument, expected in [("past_key_values", "past_key_values"), ("cache", "cache"), ("memory", None)]:
        backbone = type(f"Backbone_{argument}", (_Backbone,), {})(argument)
        assert prefix_argument(backbone) == expected
        bridge_prefix_cache(Wrapper(backbone))
        if expected is None:
            continue
        assert prefix_argument(backbone) == "past_key_values"  # what peft looks for
        assert backbone.forward(input_ids=1, past_key_values="prefixes") == "out"
        assert backbone.seen[expected] == "prefixes"


def test_prefix_refused_at_validate_when_no_backbone_takes_prefixes(world, monkeypatch):
    """A classifier whose backbone takes neither argument is refused before any run: exit 2,
    one line naming the tuner, the model and the library versions (never an internal error)."""
    from click.testing import CliRunner

    from auditft.cli import cli
    from auditft.default_plugins.tuners import prefix

    suite = _suite(world, "prefix-cls", "classification", {"kind": "prefix"})
    ok = CliRunner().invoke(cli, ["validate", str(suite)])
    assert ok.exit_code == 0, ok.output
    monkeypatch.setattr(prefix, "prefix_argument", lambda backbone: None)
    result = CliRunner().invoke(cli, ["validate", str(suite)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "tuner.kind: prefix tuning cannot reach BertForSequenceClassification" in lines[0]
    assert "transformers 5." in lines[0] and "peft 0." in lines[0] and "Traceback" not in result.output
