"""Audit ``kfold``: fold construction, aggregation math, generation scoring, and two real runs on
the tiny model: a learnable task (the gap gate passes) and a planted defect, a tiny training
set with random labels that the tuner memorises (the same gap gate fails)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from auditft.data import Example
from auditft.default_plugins.audits import kfold
from auditft.run import execute, prepare
from auditft.testing import FILLER, NEGATIVE, POSITIVE, isolated_plugin_manager, toy_classification_data, write_suite

T_975_DF2 = 4.302652729911275  # Student t, 97.5th percentile, 2 degrees of freedom (tables)
#: training shared by the control and the planted defect: only the data differs
TRAINING = {"max_steps": 80, "epochs": 1, "learning_rate": 0.02, "batch_size": 8, "max_length": 32,
            "eval_batch_size": 64, "logging_steps": 20}
GATES = [{"metric": "generalization_gap", "max": 0.25, "rationale": "memorising is not learning"},
         {"metric": "kfold_mean_accuracy", "min": 0.6, "rationale": "toy threshold"}]


# -- aggregation math ----------------------------------------------------------------------


def test_aggregation_matches_a_hand_worked_example():
    held = [0.7, 0.8, 0.9]    # mean 0.8, deviations -0.1, 0, 0.1 -> std sqrt(0.02 / 2) = 0.1
    train = [0.9, 1.0, 0.95]  # paired gaps 0.2, 0.2, 0.05 -> mean 0.15, std sqrt(0.0075)
    metrics = kfold.summarise(held, train, n_heldout=300, name="accuracy",
                              base_held=[0.6, 0.7, 0.8], base_train=[0.7, 0.7, 0.8],
                              extra={"kfold_mean_macro_f1": ([0.5, 0.6, 0.7], None)})
    half = T_975_DF2 * 0.1 / math.sqrt(3)                        # 0.248414
    mean = metrics["kfold_mean_accuracy"]
    assert mean.value == pytest.approx(0.8)
    assert mean.ci_low == pytest.approx(0.8 - half) == pytest.approx(0.551586, abs=1e-6)
    assert mean.ci_high == 1.0                                   # 1.048 clipped: accuracy <= 1
    assert mean.n == 300 and mean.base_value == pytest.approx(0.7) and mean.delta == pytest.approx(0.1)

    std = metrics["kfold_std_accuracy"]
    assert std.value == pytest.approx(0.1)
    # chi-square interval, df=2: chi2 quantiles are -2 ln(0.025) and -2 ln(0.975)
    assert std.ci_low == pytest.approx(math.sqrt(2 * 0.01 / (-2 * math.log(0.025))))   # 0.05207
    assert std.ci_high == pytest.approx(math.sqrt(2 * 0.01 / (-2 * math.log(0.975))))  # 0.62847
    assert metrics["kfold_min_accuracy"].value == 0.7 and metrics["kfold_min_accuracy"].ci_low is None
    assert metrics["kfold_min_accuracy"].base_value == 0.6

    gap = metrics["generalization_gap"]
    gap_half = T_975_DF2 * math.sqrt(0.0075) / math.sqrt(3)      # 0.215133
    assert gap.value == pytest.approx(0.15)                      # mean(train) - mean(held-out)
    assert gap.ci_low == pytest.approx(0.15 - gap_half) == pytest.approx(-0.065133, abs=1e-6)
    assert gap.ci_high == pytest.approx(0.15 + gap_half) == pytest.approx(0.365133, abs=1e-6)
    assert gap.base_value == pytest.approx((0.1 + 0.0 + 0.0) / 3)

    f1 = metrics["kfold_mean_macro_f1"]
    assert f1.value == pytest.approx(0.6) and f1.ci_low == pytest.approx(0.6 - half) and f1.base_value is None

    # identical folds: zero spread, a zero-width interval (not NaN)
    flat = kfold.t_interval([0.5, 0.5, 0.5])
    assert flat == {"mean": 0.5, "std": 0.0, "ci_low": 0.5, "ci_high": 0.5, "n": 3}


def test_corrected_interval_is_wider_than_the_plain_one():
    values = [0.5, 0.6, 0.7]
    low, high = kfold.corrected_interval(values, k=3)
    # variance factor 1/3 + 1/2 instead of 1/3
    assert high - low == pytest.approx(2 * T_975_DF2 * math.sqrt((1 / 3 + 1 / 2) * 0.01))
    plain = kfold.t_interval(values)
    assert low < plain["ci_low"]


# -- folds ---------------------------------------------------------------------------------


def test_folds_are_stratified_disjoint_and_cover_every_row_once():
    labels = [0] * 30 + [1] * 15 + [2] * 9
    random.Random(1).shuffle(labels)
    folds = kfold.fold_indices(len(labels), 3, seed=5, labels=labels)
    assert len(folds) == 3
    held_out = [i for _, held in folds for i in held]
    assert sorted(held_out) == list(range(len(labels)))          # every row held out exactly once
    for train, held in folds:
        assert not set(train) & set(held) and sorted(train + held) == list(range(len(labels)))
        counts = [sum(labels[i] == c for i in held) for c in range(3)]
        assert counts == [10, 5, 3]                              # the class mix of the whole
    assert folds == kfold.fold_indices(len(labels), 3, seed=5, labels=labels)  # seeded
    assert folds != kfold.fold_indices(len(labels), 3, seed=6, labels=labels)

    plain = kfold.fold_indices(20, 4, seed=0)                    # generation: plain KFold
    assert sorted(i for _, held in plain for i in held) == list(range(20))
    assert [len(held) for _, held in plain] == [5, 5, 5, 5]

    with pytest.raises(ValueError, match="class 2 has only 9 rows"):
        kfold.fold_indices(len(labels), 10, seed=0, labels=labels)


def test_early_stopping_carves_validation_from_the_fold_train_rows_only():
    labels = [0] * 40 + [1] * 20
    train_idx, held_idx = kfold.fold_indices(len(labels), 3, seed=1, labels=labels)[0]
    fit, val = kfold.KFoldAudit._carve_validation(train_idx, labels, seed=1)
    assert sorted(fit + val) == train_idx and not set(val) & set(held_idx)
    assert len(val) == 4 and sorted(labels[i] for i in val) == [0, 0, 0, 1]   # 10%, stratified


def test_max_rows_subsample_is_seeded_and_stratified():
    labels = [0] * 80 + [1] * 40
    keep = kfold.subsample(len(labels), 30, seed=3, labels=labels)
    assert len(keep) == 30 and len(set(keep)) == 30
    assert sum(labels[i] for i in keep) == 10                    # 2:1 kept
    assert keep == kfold.subsample(len(labels), 30, seed=3, labels=labels)
    assert kfold.subsample(len(labels), None, seed=3, labels=labels) == list(range(120))
    assert kfold.subsample(len(labels), 500, seed=3, labels=labels) == list(range(120))


def test_options_are_validated_at_prepare(toy, tiny_model_dir):
    from auditft.errors import SuiteError

    directory, _ = toy
    pm = isolated_plugin_manager()
    for options, needle in (({"k": 1}, r"options\.k: .*greater than or equal to 2"), ({"folds": 3}, "unknown key"),
                            ({"seeds": 1}, r"options\.seeds: .*1 seed has no spread"),
                            ({"seeds": 99}, r"options\.seeds: .*less than or equal to 20")):
        suite = write_suite(directory / "bad.yaml", model_dir=tiny_model_dir,
                            audits=[{"kind": "kfold", "options": options}])
        with pytest.raises(SuiteError, match=needle):
            prepare(suite, pm)


# -- generation scoring (fake session: no generation model in the tests) -------------------


class FakeSession:
    """Answers the held-out prompts from a table; records what it was asked."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, str]] = []

    def generate(self, prompts: list[str], which: str = "adapter") -> list[str]:
        self.calls.append((len(prompts), which))
        return [self.answers[p] for p in prompts]


def _gen(i: int, response: str, group: str) -> Example:
    return Example(text=f"q{i}", label=None, groups={"lang": group}, source="t.jsonl", row=i, response=response)


def test_generation_scoring_with_a_fake_session():
    held = [_gen(i, "paris france", "en") for i in range(5)] + [_gen(5 + i, "the red fox", "fr") for i in range(5)]
    train = [_gen(10, "blue", "en"), _gen(11, "green tea", "en")]
    answers = {f"q{i}": "Paris, France." for i in range(5)}          # exact (normalised): F1 1, EM 1
    answers.update({f"q{5 + i}": "a red dog" for i in range(5)})     # red only: P 1/2, R 1/2 -> F1 0.5
    answers.update({"q10": "Blue", "q11": "green"})                  # 1.0 and 2/3
    session = FakeSession(answers)
    figures = kfold.evaluate_generation(session, held, train, ["lang"])
    assert session.calls == [(10, "adapter"), (2, "adapter")]
    assert figures["heldout_token_f1"] == pytest.approx(0.75)
    assert figures["heldout_exact_match"] == pytest.approx(0.5)
    assert figures["train_token_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert figures["gap"] == pytest.approx((1 + 2 / 3) / 2 - 0.75)
    sub = figures["subgroup_gap"]
    assert sub["value"] == pytest.approx(0.5) and (sub["column"], sub["high"], sub["low"]) == ("lang", "en", "fr")

    # a group below 5 held-out examples is ignored: no pair left, no subgroup gap
    assert kfold.subgroup_gap(held[:6], [1.0] * 6, ["lang"]) is None
    assert kfold.subgroup_gap(held, [1.0] * 10, []) is None
    metrics = kfold.summarise([0.75, 0.65], [0.9, 0.8], n_heldout=20, name="token_f1")
    assert set(metrics) == {"kfold_mean_token_f1", "kfold_std_token_f1", "kfold_min_token_f1", "generalization_gap"}
    assert set(metrics) <= set(kfold.GENERATION_METRICS)


# -- real runs on the tiny model -----------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model gains nothing from intra-op threads, and on a shared 2-core machine the
    thread pool's contention makes each training step several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(directory: Path, model_dir: Path, name: str, **options: int) -> tuple[dict, Path]:
    pm = isolated_plugin_manager()
    suite = write_suite(directory / f"{name}.yaml", model_dir=model_dir, name=name,
                        tuner={"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0}, "training": TRAINING},
                        audits=[{"kind": "kfold", "options": {"k": 3, **options}, "gates": GATES}])
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="alice")
    return report, directory / "reports" / report["run_id"]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, tiny_model_dir):
    """The control: the learnable toy task (120 train rows: 108 + 12 validation), with seed
    stability on (fold 1's split trained with 3 seeds: 2 extra trainings)."""
    directory = tmp_path_factory.mktemp("kfold-clean")
    toy_classification_data(directory, n_train=120, n_test=40)
    return _run(directory, tiny_model_dir, "clean", seeds=3)


def _random_label_data(directory: Path, n_train: int = 36, n_test: int = 30) -> None:
    """Planted defect: a tiny training set whose labels are coin flips (balanced), so all a
    tuner can do is memorise it."""
    rng = random.Random(11)
    vocab = POSITIVE + NEGATIVE + FILLER
    for name, n in (("train.jsonl", n_train), ("test.jsonl", n_test)):
        labels = ["urgent", "routine"] * (n // 2)
        rng.shuffle(labels)
        rows = [{"text": " ".join(rng.sample(vocab, 6)), "label": label,
                 "sex": rng.choice(["female", "male"]), "band": rng.choice(["young", "old"])} for label in labels]
        (directory / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _check(report: dict, metric: str) -> dict:
    return next(c for c in report["checks"] if c["audit"] == "kfold" and c["metric"] == metric)


def test_clean_control_passes_the_gap_gate(clean_run):
    report, _ = clean_run
    kf = report["audits"]["kfold"]
    assert kf["error"] is None, kf["error"]
    gap = _check(report, "generalization_gap")
    assert gap["status"] == "pass", gap
    assert _check(report, "kfold_mean_accuracy")["status"] == "pass"
    assert kf["metrics"]["kfold_mean_accuracy"]["value"] > 0.7
    assert kf["metrics"]["kfold_mean_accuracy"]["n"] == 120     # every train+validation row held out once


def test_planted_memorisation_fails_the_same_gap_gate(tmp_path, tiny_model_dir):
    _random_label_data(tmp_path)
    report, _ = _run(tmp_path, tiny_model_dir, "memorised")
    kf = report["audits"]["kfold"]
    assert kf["error"] is None, kf["error"]
    folds = kf["evidence"]["folds"]
    train = sum(f["train_accuracy"] for f in folds) / 3
    held = sum(f["heldout_accuracy"] for f in folds) / 3
    assert train >= 0.8 and held < 0.7, folds                   # memorised its rows, learned nothing
    gap = _check(report, "generalization_gap")
    assert gap["status"] == "fail", gap
    assert gap["value"] > 0.25 and report["verdict"] == "blocked"


def test_evidence_folds_are_stratified_and_cover_train_plus_validation(clean_run):
    _, run_dir = clean_run
    report = json.loads((run_dir / "report.json").read_text())
    ev = report["audits"]["kfold"]["evidence"]
    assert ev["k"] == 3 and ev["n_rows"] == ev["n_rows_available"] == 120 and not ev["subsampled"]
    folds = ev["folds"]
    assert sum(f["n_heldout"] for f in folds) == 120
    assert all(f["n_train"] + f["n_heldout"] == 120 for f in folds)
    totals = {label: sum(f["heldout_label_counts"][label] for f in folds) for label in ev["labels"]}
    for f in folds:  # each fold carries the class mix of the whole, to within one row
        for label, total in totals.items():
            assert abs(f["heldout_label_counts"][label] - total / 3) <= 1
    for f in folds:
        assert 0 <= f["heldout_accuracy"] <= 1 and f["gap"] == pytest.approx(f["train_accuracy"] - f["heldout_accuracy"])
        assert f["base_heldout_accuracy"] is not None and f["train_seconds"] > 0
        assert f["subgroup_gap"] is None or f["subgroup_gap"]["column"] in ("sex", "band")
    assert not (run_dir / "work").exists()                      # fold adapters went with the scratch


def test_report_has_the_section_and_report_json_the_metrics(clean_run):
    _, run_dir = clean_run
    report = json.loads((run_dir / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    metrics = report["audits"]["kfold"]["metrics"]
    assert set(metrics) == set(kfold.CLASSIFICATION_METRICS) | set(kfold.SEED_CLASSIFICATION_METRICS)
    for name, m in metrics.items():
        if name.startswith("seed_"):
            continue  # scored on fold 1's held-out rows, no base figure (test_seed_stability_*)
        assert m["n"] == 120 and m["value"] is not None, name
        assert m["base_value"] is not None and m["delta"] is not None, name
    assert metrics["kfold_mean_accuracy"]["ci_low"] <= metrics["kfold_mean_accuracy"]["value"] <= metrics["kfold_mean_accuracy"]["ci_high"]
    html = (run_dir / "report.html").read_text()
    assert 'id="audit-kfold"' in html or "audit-kfold" in html
    assert "K-fold generalisation" in html and "held-out accuracy per fold" in html
    assert "generalization_gap" in html and "<script" not in html.lower()


def test_seed_stability_trains_fold_1_again_with_other_seeds(clean_run):
    """seeds: 3 -> fold 1's adapter plus 2 more on the same rows; the seeds really differ (a
    seed applied after the adapter is built, TRL's old trap, would make the runs identical)."""
    report, run_dir = clean_run
    kf = report["audits"]["kfold"]
    seeds = kf["evidence"]["seeds"]
    fold1 = kf["evidence"]["folds"][0]
    assert seeds["n_seeds"] == 3 and seeds["extra_trainings"] == 2 and len(seeds["runs"]) == 3
    assert len(set(seeds["seeds"])) == 3 and seeds["seeds"] == [r["seed"] for r in seeds["runs"]]
    assert seeds["runs"][0]["heldout_accuracy"] == fold1["heldout_accuracy"]  # fold 1's adapter is seed 1
    assert seeds["n_heldout"] == fold1["n_heldout"] and seeds["n_train"] == fold1["n_train"]
    figures = {(r["heldout_accuracy"], r["train_accuracy"], r["steps"]) for r in seeds["runs"]}
    assert len(figures) > 1 or seeds["disagreement"] > 0, seeds  # different initialisations, different models
    assert all(r["steps"] == seeds["runs"][0]["steps"] for r in seeds["runs"])  # same rows, same schedule
    std = kf["metrics"]["seed_std_accuracy"]
    held = [r["heldout_accuracy"] for r in seeds["runs"]]
    mean = sum(held) / 3
    assert std["value"] == pytest.approx(math.sqrt(sum((h - mean) ** 2 for h in held) / 2))
    assert std["ci_low"] <= std["value"] <= std["ci_high"] and std["n"] == fold1["n_heldout"]
    assert kf["metrics"]["seed_range_accuracy"]["value"] == pytest.approx(max(held) - min(held))
    html = (run_dir / "report.html").read_text()
    assert "Seed stability: 3 seeds on fold 1&#39;s split" in html or "Seed stability: 3 seeds on fold 1's split" in html
    assert "across seeds (same split)" in html and "across folds (different splits)" in html


def test_generation_orchestration_with_fake_models(tmp_path, monkeypatch):
    """The generation path end to end without a language model: folds, fresh tune per fold,
    scoring through ``generate(prompts, which=...)``, aggregates, base figures, report section."""
    from types import SimpleNamespace

    from auditft.data import SplitData
    from auditft.inference import ModelSession
    from auditft.jobs import AuditJob
    from auditft.records import TuneResult
    from auditft.retraining import CoreRetrainer
    from auditft.suite import TrainingSpec

    rows = [_gen(i, f"answer {i}", "en" if i % 2 else "fr") for i in range(60)]

    class FakeModels:
        tuner = SimpleNamespace(options={"r": 4}, tuned=[],
                                tune=lambda job: (FakeModels.tuner.tuned.append(job),
                                                  TuneResult(1, 2, 3, 0.5))[1])
        base, max_length, batch_size = "base", 32, 8

        def generate(self, prompts, *, which="adapter"):
            # the adapter knows the even rows; the base model knows nothing
            return [f"answer {p[1:]}" if which == "adapter" and int(p[1:]) % 2 == 0 else "no idea" for p in prompts]

    models = FakeModels()
    # core's retraining service trains each fold with the fake tuner and serves it through `models`
    monkeypatch.setattr(ModelSession, "for_suite", classmethod(lambda cls, *args, **kwargs: models))
    data = SplitData(task="generation", labels=[], group_columns=["lang"], train=rows[:54], validation=rows[54:], test=[])
    suite = SimpleNamespace(task="generation", seed=0, tuner=SimpleNamespace(training=TrainingSpec()))
    job = AuditJob(suite=suite, task="generation", data=data, options=kfold.KFoldOptions(k=3), seed=0, models=models,
                   work_dir=tmp_path, retrain=CoreRetrainer(suite, models, tmp_path))
    result = kfold.KFoldAudit(job.options).run(job)

    tuned = FakeModels.tuner.tuned
    assert len(tuned) == 3 and all(t.data.validation == [] and len(t.data.train) == 40 for t in tuned)
    assert [t.adapter_dir for t in tuned] == [tmp_path / "retrain" / f"fold-{i + 1}-adapter" / "adapter" for i in range(3)]
    assert not (tmp_path / "retrain").exists()                   # fold scratch removed
    assert set(result.metrics) == set(kfold.GENERATION_METRICS)
    held = [f["heldout_token_f1"] for f in result.evidence["folds"]]
    # "answer N" vs "no idea": token F1 0; even rows answered exactly: F1 1
    assert sum(held) / 3 == pytest.approx(result.metrics["kfold_mean_token_f1"].value)
    assert 0.2 < result.metrics["kfold_mean_token_f1"].value < 0.8
    assert result.metrics["kfold_mean_token_f1"].base_value == 0.0 and result.metrics["kfold_mean_token_f1"].n == 60
    gaps = [f["subgroup_gap"] for f in result.evidence["folds"]]
    assert all(g["value"] == pytest.approx(1.0) and (g["high"], g["low"]) == ("fr", "en") for g in gaps)
    json.dumps(result.to_dict(), allow_nan=False)
    sections = kfold.auditft_report_sections({"audits": {"kfold": result.to_dict()}})
    assert sections and "held-out token F1 per fold" in sections[0].html and sections[0].anchor == "audit-kfold"


def test_kfold_needs_core_retraining_service(tmp_path):
    """An audit job built without core's retraining service (``job.retrain``) cannot train folds."""
    from types import SimpleNamespace

    from auditft.jobs import AuditJob

    job = AuditJob(suite=SimpleNamespace(), task="classification", data=SimpleNamespace(), options=kfold.KFoldOptions(k=3),
                   seed=0, models=SimpleNamespace(), work_dir=tmp_path)
    with pytest.raises(ValueError, match=r"kfold: this audit job has no retraining service \(job\.retrain\)"):
        kfold.KFoldAudit(job.options).run(job)


def test_fold_rows_take_their_base_embeddings_from_the_run_session():
    """Issue 19: the fold rows' base embeddings come from the run's session, which keys them by
    text (the accuracy probe has usually embedded the train split already: those rows are not
    embedded again, tests/test_session_api.py), row for row in the sample's order."""
    from types import SimpleNamespace

    import numpy as np

    from auditft.default_plugins.audits.kfold.scoring import base_figures

    rows = [Example(text="note " * (i + 1), label=i % 2, groups={}, source="t.jsonl", row=i) for i in range(4)]
    calls: list[tuple[list[str], str]] = []

    def base_embed_texts(texts: list[str], what: str) -> np.ndarray:
        calls.append((list(texts), what))
        return np.array([[float(len(t)), 1.0] for t in texts])

    job = SimpleNamespace(task="classification", seed=0, data=SimpleNamespace(labels=["a", "b"]),
                          models=SimpleNamespace(base_embed_texts=base_embed_texts))
    figures = base_figures(job, rows)
    assert calls == [([ex.text for ex in rows], "kfold rows")]
    assert figures.x[:, 0].tolist() == [float(len(ex.text)) for ex in rows]
