"""The generation path: chat-template tokenisation with response-only loss, lora on a causal
LM end to end, generation accuracy with base vs adapter, ``evaluate`` metrics by local path,
and early stopping."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.chat import IGNORE_INDEX, encode_pair, messages, render_prompt
from auditft.cli import cli
from auditft.testing import tiny_causal_lm, toy_generation_data, write_suite

GEN_DATA = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7,
            "group_columns": ["group"]}


@pytest.fixture(scope="module")
def causal_dir(tmp_path_factory):
    return tiny_causal_lm(tmp_path_factory.mktemp("causal") / "model")


def _suite(directory: Path, model: Path, **over):
    toy_generation_data(directory)
    tuner = over.pop("tuner", {"kind": "lora", "options": {"r": 8, "alpha": 16, "dropout": 0.0,
                                                          "target_modules": "all-linear"},
                               "training": {"epochs": 6, "learning_rate": 0.02, "batch_size": 8,
                                            "max_length": 32, "logging_steps": 5}})
    audits = over.pop("audits", [{"kind": "accuracy", "gates": [
        {"metric": "exact_match", "min": 0.0, "rationale": "toy"}]}])
    return write_suite(directory / "suite.yaml", model_dir=model, task="generation", data=GEN_DATA,
                       tuner=tuner, audits=audits, generation={"max_new_tokens": 4}, **over)


def test_encode_pair_puts_loss_on_the_response_only(causal_dir):
    from auditft.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(str(causal_dir), base_dir=causal_dir, trust_remote_code=False,
                                             revision=None))
    chat = messages("what is the capital of kenya ?", "tell me")
    features, truncated = encode_pair(tokenizer, chat, "nairobi", 64)
    prompt_len = len(tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False)["input_ids"])
    assert not truncated
    assert features["labels"][:prompt_len] == [IGNORE_INDEX] * prompt_len
    answer = tokenizer.convert_ids_to_tokens(features["labels"][prompt_len:])
    assert answer == ["nairobi", "<|im_end|>"]  # the end-of-turn token is learnt, so the model stops
    # too long: the prompt loses its start, the response is kept
    cut, truncated = encode_pair(tokenizer, chat, "nairobi", 8)
    assert truncated and len(cut["input_ids"]) == 8
    assert tokenizer.convert_ids_to_tokens(cut["input_ids"][-2:]) == ["nairobi", "<|im_end|>"]


def test_lora_generation_end_to_end(tmp_path, causal_dir):
    suite = _suite(tmp_path, causal_dir)
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "reports"), "--author", "a"])
    assert result.exit_code in (0, 3), result.output
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    report = json.loads((run_dir / "report.json").read_text())
    curve = [loss for _, loss in report["tuner"]["loss_curve"]]
    assert curve[-1] < curve[0] - 0.5  # the toy QA task is learnt
    em = report["audits"]["accuracy"]["metrics"]["exact_match"]
    assert em["n"] == 32 and em["base_value"] is not None and em["value"] > em["base_value"]
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    html = (run_dir / "report.html").read_text()
    assert "Lowest-scoring answers" in html or em["value"] == 1.0

    # the saved adapter reloads to identical logits
    import torch

    from auditft.data import load_data
    from auditft.models import resolve_model
    from auditft.plugins import make_plugin_manager
    from auditft.suite import load_suite

    pm = make_plugin_manager(entry_points=False, env={})
    loaded = load_suite(suite, pm)
    base = resolve_model(str(causal_dir), base_dir=causal_dir, trust_remote_code=False, revision=None)
    tuner = pm.tuners.get("lora").factory(pm.tuners.get("lora").options.model_validate(loaded.tuner.options))
    first, tokenizer = tuner.load(base, run_dir / "adapter", load_data(loaded))
    second, _ = tuner.load(base, run_dir / "adapter", load_data(loaded))
    batch = tokenizer(["what is the capital of peru ?"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.equal(first(**batch).logits, second(**batch).logits)
        with first.disable_adapter():
            base_logits = first(**batch).logits
        assert not torch.equal(first(**batch).logits, base_logits)  # the adapter does something


METRIC = '''
import datasets
import evaluate


class LengthRatio(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description="toy", citation="", inputs_description="",
                                   features=datasets.Features({"predictions": datasets.Value("string"),
                                                               "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        same = sum(p.strip() == r.strip() for p, r in zip(predictions, references))
        return {"rougeL": same / len(predictions), "note": "not numeric"}
'''


def test_evaluate_metrics_by_local_path_and_offline_names(tmp_path, causal_dir):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "length_ratio.py").write_text(textwrap.dedent(METRIC))
    suite = _suite(tmp_path, causal_dir, tuner={"kind": "prompt", "options": {"shots": 2}},
                   audits=[{"kind": "accuracy", "options": {"evaluate": ["metrics/length_ratio.py"],
                                                            "evaluate_n_boot": 20},
                            "gates": [{"metric": "rougeL", "min": 0.0, "rationale": "gated by its own key"}]}])
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    metrics = report["audits"]["accuracy"]["metrics"]
    assert metrics["rougeL"]["value"] == pytest.approx(metrics["exact_match"]["value"])  # same rule here
    assert metrics["rougeL"]["base_value"] is not None and "rougeL_delta" in metrics and "note" not in metrics

    # a metric path that does not exist is invalid input, before anything runs
    spec = yaml.safe_load(suite.read_text())
    spec["audits"][0]["options"]["evaluate"] = ["metrics/missing.py"]
    suite.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["validate", str(suite)])
    assert result.exit_code == 2 and "audits[0].options.evaluate: Value error, metric path" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_hub_metric_offline_is_one_line_error(monkeypatch, tmp_path):
    from auditft.errors import AuditError
    from auditft.hfmetrics import load_metric

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AuditError, match=r"^evaluate metric 'rouge': the Hugging Face hub is not reachable"):
        load_metric("rouge", tmp_path)


def test_early_stopping_keeps_the_best_checkpoint(tmp_path, causal_dir):
    suite = _suite(tmp_path, causal_dir, tuner={
        "kind": "lora", "options": {"r": 4, "target_modules": "all-linear"},
        "training": {"epochs": 30, "learning_rate": 0.3, "batch_size": 8, "max_length": 32, "logging_steps": 5,
                     "eval_steps": 4, "early_stopping_patience": 2}})
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "reports")])
    assert result.exit_code in (0, 3), result.output
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    facts = report["tuner"]["facts"]
    evals = facts["eval_loss_curve"]
    stop = facts["early_stopping"]
    assert stop["stopped_early"] and report["tuner"]["steps"] < 30 * 6  # a huge learning rate diverges
    best = min(evals, key=lambda point: point[1])
    assert stop["best_step"] == best[0] and stop["best_eval_loss"] == pytest.approx(best[1])
