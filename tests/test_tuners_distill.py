"""The built-in ``distill`` tuner: student initialisation, the loss, a real distillation on
the toy task, and a teacher taken from a finished LoRA run."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from auditft.testing import tiny_classifier, toy_classification_data, write_suite

TRAINING = {"epochs": 3, "learning_rate": 0.02, "batch_size": 16, "max_length": 32,
            "eval_batch_size": 64, "logging_steps": 5, "checkpoint_steps": 0}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On shared, busy cores torch's thread pool spins against other processes (a training
    step of the tiny model is ~25x slower with 2 threads than with 1 there)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def deep_model_dir(tmp_path_factory) -> Path:
    """A tiny random BERT with 4 blocks, so the default student has 2."""
    return tiny_classifier(tmp_path_factory.mktemp("deep") / "model", layers=4)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("toy")
    toy_classification_data(directory)
    return directory


def _job(directory: Path, model_dir: Path, pm, tuner: dict, name: str = "distilled"):
    from auditft.data import load_data
    from auditft.jobs import TuneJob
    from auditft.models import resolve_model
    from auditft.suite import load_suite

    path = write_suite(directory / f"{name}.yaml", model_dir=model_dir, name=name, tuner=tuner)
    suite = load_suite(path, pm)
    options = pm.tuners.get(suite.tuner.kind).options.model_validate(suite.tuner.options)
    out = directory / name
    (out / "adapter").mkdir(parents=True, exist_ok=True)
    job = TuneJob(suite=suite, task=suite.task, base=resolve_model(suite.model.base, base_dir=directory),
                  data=load_data(suite), training=suite.tuner.training, options=options, seed=suite.seed,
                  adapter_dir=out / "adapter", work_dir=out / "work")
    return job, pm.tuners.get(suite.tuner.kind).factory(options)


def _logits(model, tokenizer, texts):
    import torch

    with torch.inference_mode():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        return model(**enc).logits


def test_registered_for_classification_only(pm):
    entry = pm.tuners.get("distill")
    assert entry is not None and entry.tasks == ("classification",)
    assert any("generation" in line for line in entry.limitations)
    options = entry.options.model_validate({})
    assert (options.teacher, options.temperature, options.alpha) == ("finetune", 2.0, 0.5)
    from pydantic import ValidationError

    for bad in ({"teacher": "bert"}, {"teacher": "run:"}, {"alpha": 1.5}, {"temperature": 0}, {"nope": 1}):
        with pytest.raises(ValidationError):
            entry.options.model_validate(bad)


def test_student_has_half_the_blocks_initialised_from_every_other_teacher_block(deep_model_dir):
    import torch

    from auditft.default_plugins.tuners.distill import find_blocks, init_student, kept_layers
    from auditft.models import load_classifier, resolve_model

    teacher = load_classifier(resolve_model(str(deep_model_dir)), ["routine", "urgent"])
    student, kept = init_student(teacher)
    assert kept == [0, 2] and student.config.num_hidden_layers == 2
    assert teacher.config.num_hidden_layers == 4  # the teacher is untouched
    _, teacher_blocks = find_blocks(teacher)
    name, student_blocks = find_blocks(student)
    assert name == "bert.encoder.layer" and len(student_blocks) == 2
    for s_index, t_index in enumerate(kept):
        s_state, t_state = student_blocks[s_index].state_dict(), teacher_blocks[t_index].state_dict()
        assert s_state.keys() == t_state.keys()
        assert all(torch.equal(s_state[k], t_state[k]) for k in s_state)
    assert not torch.equal(student_blocks[1].state_dict()["attention.self.query.weight"],
                           teacher_blocks[1].state_dict()["attention.self.query.weight"])
    teacher_state = teacher.state_dict()
    for key, value in student.state_dict().items():  # embeddings, pooler, head: copied
        if not key.startswith("bert.encoder.layer."):
            assert torch.equal(value, teacher_state[key]), key
    assert kept_layers(12, 6) == [0, 2, 4, 6, 8, 10] and kept_layers(5, 3) == [0, 2, 4]
    assert kept_layers(12, 4) == [0, 3, 6, 9]
    with pytest.raises(ValueError):
        kept_layers(4, 4)


def test_loss_matches_a_hand_computation():
    import torch

    from auditft.default_plugins.tuners.distill import distillation_loss

    student = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    teacher = torch.tensor([[1.0, 1.5, 0.0], [-0.5, 2.0, 1.0]])
    labels = torch.tensor([0, 2])
    t, alpha = 2.0, 0.3
    kl = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        p_s = [math.exp(v / t) / sum(math.exp(w / t) for w in s_row) for v in s_row]
        p_t = [math.exp(v / t) / sum(math.exp(w / t) for w in t_row) for v in t_row]
        kl += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))
    kl /= 2
    ce = 0.0
    for row, y in zip(student.tolist(), labels.tolist()):
        ce -= math.log(math.exp(row[y]) / sum(math.exp(v) for v in row))
    ce /= 2
    expected = alpha * kl * t * t + (1 - alpha) * ce
    got = distillation_loss(student, teacher, labels, temperature=t, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert distillation_loss(student, teacher, labels, temperature=t, alpha=0.0).item() == pytest.approx(ce, rel=1e-5)
    # same logits: the KL term vanishes
    assert distillation_loss(student, student, labels, temperature=t, alpha=1.0).item() == pytest.approx(0, abs=1e-6)


def test_distills_the_toy_task_end_to_end(toy_dir, deep_model_dir, pm):
    from auditft.adapter_meta import read_meta

    tuner_spec = {"kind": "distill", "options": {"teacher_epochs": 2},
                  "training": {**TRAINING, "epochs": 3, "learning_rate": 0.01}}
    job, tuner = _job(toy_dir, deep_model_dir, pm, tuner_spec)
    result = tuner.tune(job)
    files = {p.name for p in job.adapter_dir.iterdir()}
    assert "model.safetensors" in files and not any(n.endswith((".bin", ".pt")) for n in files)
    meta = read_meta(job.adapter_dir)
    assert meta["format"] == "distilled-model" and meta["student_layers"] == 2 and meta["teacher"] == "finetune"
    assert (job.work_dir / "teacher" / "model" / "model.safetensors").is_file()  # teacher checkpointed apart
    facts = result.facts
    assert facts["compression_ratio"] > 1
    assert facts["teacher_parameters"] > facts["student_parameters"] == result.total_parameters
    assert result.trainable_parameters == result.total_parameters
    for key in ("retained_accuracy", "teacher_accuracy", "student_accuracy", "speed_up", "teacher_seconds"):
        assert facts[key] is not None, key
    assert facts["teacher_accuracy"] > 0.8 and facts["student_accuracy"] > 0.8, facts
    assert facts["retained_accuracy"] == pytest.approx(facts["student_accuracy"] / facts["teacher_accuracy"], abs=1e-3)
    assert facts["speed_up"] > 0
    json.dumps(result.to_dict())  # the facts go into report.json
    # reloaded from the quarantined adapter directory: the very same model
    model, tokenizer = tuner.load(job.base, job.adapter_dir, job.data)
    texts = [ex.text for ex in job.data.test[:16]]
    import torch

    assert torch.equal(_logits(model, tokenizer, texts), _logits(tuner.student, tokenizer, texts))
    assert model.config.num_hidden_layers == 2
    # a resumed run reuses the finished teacher from work/teacher instead of training it again
    from auditft.default_plugins.tuners.distill import finetuned_teacher

    teacher, teacher_facts = finetuned_teacher(job, job.options, tokenizer, None, None)
    assert teacher_facts["teacher_seconds"] == facts["teacher_seconds"]
    assert teacher.config.num_hidden_layers == 4


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, deep_model_dir):
    """One finished LoRA run of the toy suite on the 4-block model."""
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare

    directory = tmp_path_factory.mktemp("lora-run")
    toy_classification_data(directory)
    suite = write_suite(directory / "suite.yaml", model_dir=deep_model_dir, name="teacher",
                        tuner={"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0},
                               "training": {**TRAINING, "epochs": 4}})
    pm = make_plugin_manager(entry_points=False, env={})
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="a")
    return directory / "reports" / report["run_id"], report


def test_teacher_from_a_finished_lora_run(lora_run, toy_dir, deep_model_dir, pm):
    run_dir, report = lora_run
    tuner_spec = {"kind": "distill", "options": {"teacher": f"run:{run_dir}", "alpha": 0.7},
                  "training": {**TRAINING, "max_steps": 20}}
    job, tuner = _job(toy_dir, deep_model_dir, pm, tuner_spec, name="from-run")
    result = tuner.tune(job)
    facts = result.facts
    assert facts["teacher_kind"] == "lora" and facts["teacher_run"] == run_dir.name
    assert facts["student_init"].startswith("adapter merged")
    assert facts["teacher_seconds"] == report["tuner"]["seconds"]
    assert not (job.work_dir / "teacher").exists()  # no teacher trained in this run
    # the merged teacher scores what the LoRA run's own audit measured on its test split
    assert facts["teacher_accuracy"] > 0.8 and facts["compression_ratio"] > 1
    assert result.steps == 20 and (job.adapter_dir / "model.safetensors").is_file()

    # merging the LoRA adapter into the teacher does not change what it predicts
    import torch

    from auditft.default_plugins.tuners.distill import _merged
    from auditft.default_plugins.tuners.lora import LoraOptions, LoraTuner

    peft_model, tokenizer = LoraTuner(LoraOptions(r=4, alpha=8, dropout=0.0)).load(
        job.base, run_dir / "adapter", job.data)
    texts = [ex.text for ex in job.data.test[:16]]
    before = _logits(peft_model, tokenizer, texts)
    merged, _ = _merged(peft_model)
    assert not hasattr(merged, "peft_config")
    assert torch.allclose(before, _logits(merged, tokenizer, texts), atol=1e-5)


def test_missing_teacher_run_is_a_one_line_error(toy_dir, deep_model_dir, pm, tmp_path):
    from auditft.errors import AuditftError

    missing = tmp_path / "no-such-run"
    job, tuner = _job(toy_dir, deep_model_dir, pm, {"kind": "distill", "options": {"teacher": f"run:{missing}"},
                                                    "training": TRAINING}, name="missing")
    with pytest.raises(AuditftError) as info:
        tuner.tune(job)
    message = str(info.value)
    assert "\n" not in message and "tuner.options.teacher" in message and "no such run directory" in message
    assert not any(job.adapter_dir.iterdir())
    # a directory that is not a finished run is refused too, before anything is trained
    (tmp_path / "half").mkdir()
    job = replace(job, options=job.options.model_copy(update={"teacher": f"run:{tmp_path / 'half'}"}))
    tuner.options = job.options
    with pytest.raises(AuditftError, match="not an auditft run directory"):
        tuner.tune(job)
