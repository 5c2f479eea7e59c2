"""``training.precision`` and ``model.device_map``: validation, resolution, and one real
bf16 run on CPU (the GPU path itself is exercised by ``benchmarks/gpu_check.sh``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.cli import cli
from auditft.errors import SuiteError
from auditft.models import ResolvedModel, placement, resolve_precision, torch_dtype
from auditft.suite import load_suite

torch = pytest.importorskip("torch")
NO_CUDA = not torch.cuda.is_available()


def _edit(suite: Path, training: dict | None = None, model: dict | None = None) -> Path:
    raw = yaml.safe_load(suite.read_text())
    raw["tuner"]["training"].update(training or {})
    raw["model"].update(model or {})
    suite.write_text(yaml.safe_dump(raw, sort_keys=False))
    return suite


@pytest.mark.parametrize("value", ["auto", "fp32", "bf16"])
def test_each_cpu_precision_validates(toy, pm, value):
    _, suite = toy
    loaded = load_suite(_edit(suite, {"precision": value}), pm)
    assert loaded.tuner.training.precision == value


def test_precision_defaults_to_auto(toy, pm):
    assert load_suite(toy[1], pm).tuner.training.precision == "auto"


def test_an_unknown_precision_names_the_key_path(toy, pm):
    _, suite = toy
    with pytest.raises(SuiteError) as err:
        load_suite(_edit(suite, {"precision": "int8"}), pm)
    message = str(err.value)
    assert "tuner.training.precision" in message and "\n" not in message
    assert "'bf16'" in message  # the allowed values are listed


@pytest.mark.skipif(not NO_CUDA, reason="the refusal is for machines without CUDA")
def test_fp16_without_cuda_is_refused_in_one_line(toy, pm):
    _, suite = toy
    with pytest.raises(SuiteError) as err:
        load_suite(_edit(suite, {"precision": "fp16"}), pm)
    message = str(err.value)
    assert message == f"{suite}: tuner.training.precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU"


@pytest.mark.skipif(not NO_CUDA, reason="the refusal is for machines without CUDA")
def test_fp16_on_cpu_exits_2_through_the_cli(toy):
    _, suite = toy
    result = CliRunner().invoke(cli, ["validate", str(_edit(suite, {"precision": "fp16"}))])
    assert result.exit_code == 2, result.output
    assert "tuner.training.precision: fp16 needs a CUDA device" in result.output


@pytest.mark.parametrize("device_map", ["auto", "balanced", {"": 0}, {"bert": "cpu", "classifier": "cuda:0"}])
def test_device_map_values_validate(toy, pm, device_map):
    _, suite = toy
    assert load_suite(_edit(suite, model={"device_map": device_map}), pm).model.device_map == device_map


@pytest.mark.parametrize("device_map, needle", [
    ("everywhere", "unknown strategy 'everywhere'"),
    ({"bert": "gpu7"}, "must be a GPU index"),
    ({"bert": -1}, "must be a GPU index"),
    ({}, "non-empty"),
    (3, "strategy name"),
])
def test_a_bad_device_map_names_the_key_path(toy, pm, device_map, needle):
    _, suite = toy
    with pytest.raises(SuiteError) as err:
        load_suite(_edit(suite, model={"device_map": device_map}), pm)
    message = str(err.value)
    assert f"{suite}: model.device_map: " in message and needle in message and "\n" not in message


def test_device_map_with_a_distributed_run_is_refused(toy, pm, monkeypatch):
    _, suite = toy
    _edit(suite, model={"device_map": "auto"})
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SuiteError) as err:
        load_suite(suite, pm)
    assert str(err.value).startswith(f"{suite}: model.device_map: ") and "2 processes" in str(err.value)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert load_suite(suite, pm).model.device_map == "auto"  # one process: accepted


@pytest.mark.skipif(not NO_CUDA, reason="auto is bf16 on a bf16 CUDA device")
def test_auto_resolves_to_fp32_on_cpu():
    assert resolve_precision("auto") == "fp32"


def test_explicit_precisions_resolve_to_themselves_and_their_dtypes():
    assert [resolve_precision(p) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
    assert [torch_dtype(p) for p in ("fp32", "bf16", "fp16")] == [torch.float32, torch.bfloat16, torch.float16]
    with pytest.raises(ValueError):
        resolve_precision("fp8")


def test_loads_ask_for_the_runs_dtype_and_placement():
    model = ResolvedModel("m", "/nowhere", "test", {}, precision="bf16")
    kwargs, move_to = placement(model, quantized=False)
    assert kwargs["dtype"] is torch.bfloat16
    if NO_CUDA:
        assert "device_map" not in kwargs and move_to is None
    mapped = ResolvedModel("m", "/nowhere", "test", {}, precision="fp32", device_map="auto")
    assert placement(mapped, quantized=False) == ({"dtype": torch.float32, "device_map": "auto"}, None)
    # the report's base_model record is unchanged by the new fields
    assert set(model.to_dict()) == {"ref", "path", "description", "weights_sha256", "trust_remote_code", "revision"}


def test_trainable_parameters_are_kept_in_fp32():
    from auditft.training import trainable_in_fp32

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)).to(torch.bfloat16)
    model[0].weight.requires_grad_(False)
    trainable_in_fp32(model)
    assert model[0].weight.dtype == torch.bfloat16  # frozen base: left as loaded
    assert model[0].bias.dtype == model[1].weight.dtype == torch.float32


def test_a_bf16_run_on_cpu_completes_and_records_its_precision(tmp_path, tiny_model_dir):
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.testing import toy_classification_data, write_suite

    toy_classification_data(tmp_path, n_train=80, n_test=40)
    suite = _edit(write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir),
                  {"precision": "bf16", "epochs": 1, "logging_steps": 2, "checkpoint_steps": 0})
    pm = make_plugin_manager(entry_points=False, env={})
    prepared = prepare(suite, pm)
    assert prepared.base.precision == "bf16"
    from auditft.models import load_for_task

    loaded = load_for_task(prepared.base, "classification", prepared.data.labels)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}  # the weights, not only autocast
    run_id = execute(prepared, pm, reports=tmp_path / "reports", author="alice")["run_id"]
    run_dir = tmp_path / "reports" / run_id
    report = json.loads((run_dir / "report.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    compute = manifest["compute"]
    assert compute["precision_requested"] == "bf16" and compute["precision"] == "bf16"
    assert compute["device"] == ("cpu" if NO_CUDA else "cuda") and compute["torch"] == torch.__version__
    assert report["manifest"]["compute"] == compute
    facts = report["tuner"]["facts"]
    assert facts["precision"] == "bf16" and facts["devices"]
    losses = [loss for _, loss in report["tuner"]["loss_curve"]]
    assert losses and all(math.isfinite(loss) for loss in losses)
    accuracy = report["audits"]["accuracy"]["metrics"]["accuracy"]["value"]
    assert math.isfinite(accuracy)


def test_qlora_computes_in_the_runs_precision(tmp_path, tiny_model_dir):
    pytest.importorskip("bitsandbytes")
    from auditft.default_plugins.tuners.qlora import quantization_config
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.testing import toy_classification_data, write_suite

    assert quantization_config(True, precision="bf16").bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config(True).bnb_4bit_compute_dtype == torch.float32
    toy_classification_data(tmp_path, n_train=60, n_test=30)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir)
    raw = yaml.safe_load(suite.read_text())
    raw["tuner"]["kind"] = "qlora"
    raw["tuner"]["training"].update(precision="bf16", epochs=1, logging_steps=2, checkpoint_steps=0)
    suite.write_text(yaml.safe_dump(raw, sort_keys=False))
    pm = make_plugin_manager(entry_points=False, env={})
    run_id = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="alice")["run_id"]
    report = json.loads((tmp_path / "reports" / run_id / "report.json").read_text())
    facts = report["tuner"]["facts"]
    assert facts["compute_dtype"] == "bfloat16" and facts["precision"] == "bf16"
    assert all(math.isfinite(loss) for _, loss in report["tuner"]["loss_curve"])


def test_reused_base_weights_are_loaded_in_the_runs_precision(tiny_model_dir):
    """k-fold retraining reads the checkpoint once (``reusing_base_weights``): that path too
    must give each load the run's dtype, not the checkpoint's."""
    from dataclasses import replace

    from auditft.models import load_for_task, resolve_model, reusing_base_weights

    base = resolve_model(str(tiny_model_dir))
    with reusing_base_weights():
        half = load_for_task(replace(base, precision="bf16"), "classification", ["a", "b"])
        full = load_for_task(base, "classification", ["a", "b"])
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in full.parameters()} == {torch.float32}
