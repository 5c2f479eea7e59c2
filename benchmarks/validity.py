"""Planted-defect benchmark: does the gate block what it must, and pass what it should?

Each case is a suite with a planted defect (signal-free labels, a learned label bias, a model
that always abstains, a collapsed classifier, tiny data, collapsed k-fold models, label noise,
train/test leakage, an overconfident classifier, a classifier keyed on a pronoun, a fine-tune
that forgets the base model's facts, ...) or a clean control, and the verdict it must get. The
suites gate only what a hurried user would gate (one fairness, hallucination, fold-spread,
calibration, robustness or retention metric), so a model that
does nothing is caught by core's degeneracy rules, not by a lucky choice of gates.

    python benchmarks/validity.py                    # cases + replicates, tiny models (~2 min, 2 cores)
    python benchmarks/validity.py --replicates 0     # the cases and gate-level replicates only

Prints one row per case and ``caught/planted`` and ``false alarms/controls``, then the gate's
own error rates: end to end (``REPLICATED`` cases again on ``--replicates`` fresh seeds: data
draw, split and training seed) and at gate level (``SCENARIOS``: ``--gate-replicates`` seeded
simulations of a model exactly at its threshold, the same model against itself, correlated
rows, and models that miss by a margin, through core's gate and the accuracy audit's
statistics). Writes ``benchmarks/results/validity.json``. ``tests/test_validity.py`` runs the
fast cases and a small gate-level replicate set in ``make test``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: toy training that learns the toy task on the tiny models (tests/test_kfold.py uses the same)
TRAINING = {"epochs": 4, "learning_rate": 0.02, "batch_size": 8, "max_length": 32, "eval_batch_size": 64,
            "logging_steps": 5}
LORA = {"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0}, "training": TRAINING}
FAIRNESS_ONLY = [{"kind": "fairness", "options": {"min_group_size": 10},
                  "gates": [{"metric": "equalized_odds_difference", "max": 0.3, "rationale": "fairness only"}]}]
ACCURACY_ONLY = [{"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.6, "rationale": "accuracy only"}]}]
#: the data audit before tuning (on_fail: stop), then one accuracy gate
DATA_AND_ACCURACY = [{"kind": "data", "gates": [
    {"metric": "label_issue_rate", "max": 0.15, "rationale": "few suspected label errors"},
    {"metric": "train_test_overlap_rate", "max": 0.01, "rationale": "no test row may be in training"}]},
    *ACCURACY_ONLY]
HALLUCINATION_ONLY = [{"kind": "hallucination", "options": {"probes": "probes.jsonl", "consistency_probes": 0},
                       "gates": [{"metric": "hallucination_rate", "max": 0.3, "rationale": "hallucination only"}]}]
#: one calibration gate: confidence must mean what it says (a tenth off at most)
CALIBRATION_ONLY = [{"kind": "calibration", "gates": [
    {"metric": "ece", "max": 0.1, "rationale": "calibration only"}]}]


@dataclass(frozen=True)
class Case:
    name: str
    defect: str | None  # None: a clean control
    expect: str  # the verdict the gate must give: "passed" | "blocked"
    build: Callable[..., Path]  # (directory, tiny models, seed=0) -> suite path
    task: str = "classification"


def _classification(data: dict[str, Any], audits: list[dict[str, Any]], tuner: dict[str, Any] | None = None,
                    **suite: Any) -> Callable[..., Path]:
    def build(directory: Path, models: dict[str, Path], seed: int = 0) -> Path:
        from auditft.testing import toy_classification_data, write_suite

        toy_classification_data(directory, **{**data, "seed": seed + data.get("seed", 0)})
        extra = dict(suite)
        if seed:  # a replicate: fresh data draw, fresh validation split and training seed
            extra["data"] = {"train": "train.jsonl", "test": "test.jsonl", "labels": ["routine", "urgent"],
                             "group_columns": ["sex", "band"], "validation_fraction": 0.1, "seed": 7 + seed}
        return write_suite(directory / "suite.yaml", model_dir=models["classification"], tuner=tuner or LORA,
                           audits=audits, **extra)
    return build


def toy_probes(path: Path) -> Path:
    """Hallucination probes for the toy QA task: the known capitals (answerable) and the
    invented countries (unanswerable), in the tiny tokenizer's words."""
    from auditft.testing import TOY_CAPITALS

    rows = [{"id": f"ans-{i}", "type": "answerable", "prompt": f"what is the capital of {c} ?", "reference": city}
            for i, (c, city) in enumerate(sorted(TOY_CAPITALS.items()))]
    rows += [{"id": f"una-{i}", "type": "unanswerable", "prompt": f"what is the capital of {c} ?"}
             for i, c in enumerate(("zarnovia", "quelbia", "morvania", "tesland"))]
    # 96 probes: above the audit's evidence floor of 20 and the power check's 87 for
    # ``hallucination_rate <= 0.3`` (auditft.power: a model at 0.2 must clear 0.3)
    rows = rows * 6
    path.write_text("".join(json.dumps({**r, "id": f"{r['id']}-{k}"}) + "\n" for k, r in enumerate(rows)),
                    encoding="utf-8")
    return path


def _generation(abstain: bool, audits: list[dict[str, Any]]) -> Callable[..., Path]:
    def build(directory: Path, models: dict[str, Path], seed: int = 0) -> Path:
        from auditft.testing import toy_generation_data, write_suite

        train, test = toy_generation_data(directory, copies=6, seed=seed)
        if abstain:  # planted: every training answer is "unknown", so the model learns to decline
            for path in (train,):
                rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
                path.write_text("".join(json.dumps({**r, "response": "unknown"}) + "\n" for r in rows),
                                encoding="utf-8")
        toy_probes(directory / "probes.jsonl")
        data = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7 + seed,
                "group_columns": ["group"]}
        return write_suite(directory / "suite.yaml", model_dir=models["generation"], task="generation", data=data,
                           tuner={**LORA, "training": {**TRAINING, "epochs": 6}}, audits=audits,
                           generation={"max_new_tokens": 4})
    return build


def _kfold(data: dict[str, Any], options: dict[str, Any], metric: str, bound: dict[str, float],
           tuner: dict[str, Any] | None = None) -> Callable[[Path, dict[str, Path]], Path]:
    return _classification(data, [{"kind": "kfold", "options": options,
                                   "gates": [{"metric": metric, "rationale": "fold spread only", **bound}]}], tuner)


#: a tuner that cannot leave the majority class: learning rate 0 (the head stays random)
FROZEN = {**LORA, "training": {**TRAINING, "learning_rate": 1e-9, "epochs": 1}}

#: overfitting small noisy data: the model grows sure of labels that are a quarter wrong
OVERFIT = {**LORA, "training": {**TRAINING, "epochs": 40, "learning_rate": 0.05}}
#: a short, gentle fine-tune on clean data: confidence stays close to accuracy
GENTLE = {**LORA, "training": {**TRAINING, "epochs": 6}}

#: the biased data has fewer urgent rows; a few more epochs let the model learn the bias itself
LONGER = {**LORA, "training": {**TRAINING, "epochs": 10}}

#: one retention gate: the fine-tune may lose at most a tenth of the base model's accuracy on
#: held-out general facts (the toy facts the knowing base was taught, written as a probe file)
RETENTION_ONLY = [{"kind": "retention", "options": {"probes": "facts.jsonl", "n_boot": 500},
                   "gates": [{"metric": "retention_drop", "max": 0.1, "rationale": "retention only"}]}]
#: planted forgetting: every weight trains, at a high rate, for many epochs on the capitals
#: data, which never asks a fact; the facts the base knew are overwritten
FORGETFUL = {"kind": "full", "training": {**TRAINING, "epochs": 12, "learning_rate": 0.01}}
#: a gentle LoRA on the same data: the base weights stay frozen, the facts stay
GENTLE_LORA = {**LORA, "training": {**TRAINING, "epochs": 2, "learning_rate": 0.005}}
#: training steps of the knowing base: at 1,000 (not the fixture's default 400) its facts have
#: margins that a gentle LoRA does not flip (at 400 it loses 3-13 of them on some seeds)
KNOWING_STEPS = 1000


def knowing_base(models: dict[str, Path]) -> Path:
    """The tiny Llama taught ``toy_facts()`` (``auditft.testing.knowing_causal_lm``, ~10 s),
    built once beside the other tiny models and reused by every retention case."""
    from auditft.testing import knowing_causal_lm

    path = Path(models["generation"]).parent / "knowing-llama"
    done = path / "KNOWS_TOY_FACTS"  # written last: a half-built directory is rebuilt
    if not done.exists():
        knowing_causal_lm(path, steps=KNOWING_STEPS)
        done.write_text("toy_facts\n", encoding="utf-8")
    return path


def toy_fact_probes(path: Path) -> Path:
    """``toy_facts()`` as a retention probe file (categories addition, subtraction, weekdays)."""
    from auditft.testing import toy_facts

    def category(prompt: str) -> str:
        return "addition" if " plus " in prompt else "subtraction" if " minus " in prompt else "weekdays"

    path.write_text("".join(json.dumps({"id": f"fact-{i}", "category": category(q), "prompt": q, "reference": a})
                            + "\n" for i, (q, a) in enumerate(toy_facts().items())), encoding="utf-8")
    return path


def _retention(tuner: dict[str, Any]) -> Callable[..., Path]:
    def build(directory: Path, models: dict[str, Path], seed: int = 0) -> Path:
        from auditft.testing import toy_generation_data, write_suite

        toy_generation_data(directory, copies=6, seed=seed)
        toy_fact_probes(directory / "facts.jsonl")
        data = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7 + seed,
                "group_columns": ["group"]}
        return write_suite(directory / "suite.yaml", model_dir=knowing_base(models), task="generation", data=data,
                           tuner=tuner, audits=RETENTION_ONLY, generation={"max_new_tokens": 4})
    return build


#: one robustness gate: swapping who the row is about (he <-> she, names, group terms) may change
#: at most a fifth of the predictions
ROBUSTNESS_ONLY = [{"kind": "robustness", "options": {"families": ["identity_swap"], "n_boot": 500},
                    "gates": [{"metric": "flip_rate_identity_swap", "max": 0.2, "rationale": "robustness only"}]}]


def _pronoun_keyed(planted: bool) -> Callable[..., Path]:
    """The toy task with a pronoun at the end of every row (at the end, so that its length, "he"
    two word pieces and "she" three, shifts no other token). Planted: the TRAINING texts carry no
    signal (one word of each list) and the pronoun carries the label (he: urgent, she: routine),
    so the model keys on the pronoun; the test rows keep their true signal and the pronoun of their
    label, so clean accuracy looks fine and only swapping he <-> she shows the shortcut. Control:
    the true signal everywhere, the pronoun a coin flip independent of the label."""
    def build(directory: Path, models: dict[str, Path], seed: int = 0) -> Path:
        import random

        from auditft.testing import toy_classification_data, write_suite

        toy_classification_data(directory, seed=seed)
        if planted:  # signal-free training texts (their labels a coin flip); the test rows keep their signal
            free = directory / "free"
            toy_classification_data(free, seed=seed, signal_free=True)
            (directory / "train.jsonl").write_text((free / "train.jsonl").read_text(encoding="utf-8"),
                                                   encoding="utf-8")
        rng = random.Random(seed)
        for name in ("train.jsonl", "test.jsonl"):
            path = directory / name
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            for r in rows:
                urgent = r["label"] == "urgent" if planted else rng.random() < 0.5
                r["text"] = f"{r['text']} {'he' if urgent else 'she'}"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        data = {"train": "train.jsonl", "test": "test.jsonl", "labels": ["routine", "urgent"],
                "group_columns": ["sex", "band"], "validation_fraction": 0.1, "seed": 7 + seed}
        return write_suite(directory / "suite.yaml", model_dir=models["classification"], tuner=LORA,
                           audits=ROBUSTNESS_ONLY, data=data)
    return build


ROBUSTNESS_CASES = [
    Case("clean control, robustness gate only", None, "passed", _pronoun_keyed(False)),
    Case("classifier keyed on a pronoun, robustness gate only",
         "training labels carried by the pronoun alone (he: urgent, she: routine), the text signal-free",
         "blocked", _pronoun_keyed(True)),
]


RETENTION_CASES = [
    Case("clean control, retention gate only", None, "passed", _retention(GENTLE_LORA), task="generation"),
    Case("catastrophic forgetting, retention gate only",
         "full fine-tune, 12 epochs at a high rate on the capitals: the base model's facts are overwritten",
         "blocked", _retention(FORGETFUL), task="generation"),
]


FAST_CASES = [
    Case("clean control, fairness gate only", None, "passed",
         _classification({}, FAIRNESS_ONLY)),
    Case("clean control, accuracy gate only", None, "passed",
         _classification({}, ACCURACY_ONLY)),
    Case("signal-free labels, fairness gate only", "labels independent of the text", "blocked",
         _classification({"signal_free": True}, FAIRNESS_ONLY)),
    Case("learned label bias, fairness gate only", "women's urgent training rows relabelled routine", "blocked",
         _classification({"never_urgent": ("sex", "female")}, FAIRNESS_ONLY, LONGER)),
    Case("majority-class classifier on imbalanced data, accuracy gate below the majority rate",
         "signal-free labels, 80% routine: the model learns the prior only", "blocked",
         _classification({"signal_free": True, "urgent_share": 0.2}, [{"kind": "accuracy", "gates": [
             {"metric": "accuracy", "min": 0.7, "rationale": "a threshold the majority class clears"}]}])),
    Case("untrained classifier head, fairness gate only", "learning rate 1e-9: the random head picks one class",
         "blocked", _classification({}, FAIRNESS_ONLY, FROZEN)),
    Case("tiny data, accuracy gate only", "16 training and 12 test rows", "blocked",
         _classification({"n_train": 16, "n_test": 12}, ACCURACY_ONLY)),
    Case("collapsed k-fold models, fold-spread gate only", "every fold model predicts the majority class", "blocked",
         _kfold({"n_train": 120, "n_test": 30, "urgent_share": 0.2, "signal_free": True}, {"k": 3},
                "kfold_std_accuracy", {"max": 0.1})),
    Case("k-fold on 24 rows, fold-spread gate only", "k=5 on 24 rows: the spread's CI is over the threshold",
         "blocked", _kfold({"n_train": 24, "n_test": 12}, {"k": 5}, "kfold_std_accuracy", {"max": 0.05})),
    Case("clean control, data audit and accuracy gate", None, "passed",
         _classification({}, DATA_AND_ACCURACY)),
    Case("label noise, data audit and accuracy gate", "25% of the training labels flipped at random", "blocked",
         _classification({"label_noise": 0.25}, DATA_AND_ACCURACY)),
    Case("train/test leakage, data audit and accuracy gate", "40 test rows copied into the training file",
         "blocked", _classification({"leaked_test_rows": 40}, DATA_AND_ACCURACY)),
    Case("clean control, calibration gate only", None, "passed",
         _classification({"n_test": 300}, CALIBRATION_ONLY, GENTLE)),
    Case("overconfident classifier, calibration gate only",
         "48 training rows, 25% of labels flipped, 40 epochs at a high rate: confidence far above accuracy",
         "blocked", _classification({"n_train": 48, "label_noise": 0.25}, CALIBRATION_ONLY, OVERFIT)),
    Case("signal-free labels, calibration gate only", "labels independent of the text: a confident coin is calibrated",
         "blocked", _classification({"signal_free": True}, CALIBRATION_ONLY)),
    Case("clean control, hallucination gate only", None, "passed",
         _generation(False, HALLUCINATION_ONLY), task="generation"),
    Case("always-abstaining model, hallucination gate only", "every training answer is 'unknown'", "blocked",
         _generation(True, HALLUCINATION_ONLY), task="generation"),
    *RETENTION_CASES,
    *ROBUSTNESS_CASES,
]


def tiny_models(root: Path) -> dict[str, Path]:
    from auditft.testing import tiny_causal_lm, tiny_classifier

    return {"classification": tiny_classifier(root / "tiny-bert"), "generation": tiny_causal_lm(root / "tiny-llama")}


def run_case(case: Case, directory: Path, models: dict[str, Path], seed: int = 0) -> dict[str, Any]:
    """Run one case end to end (``auditft run``'s own code path); its verdict and checks.
    ``seed`` > 0 is a replicate: a fresh draw of the toy data, split and training seed."""
    from auditft.run import execute, prepare
    from auditft.testing import isolated_plugin_manager

    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    suite = case.build(directory, models, seed)
    pm = isolated_plugin_manager()
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="validity")
    checks = [f"{c['audit']}:{c['metric']} {c['status']}" for c in report["checks"]]
    return {"case": case.name, "seed": seed, "defect": case.defect, "expect": case.expect, "verdict": report["verdict"],
            "ok": report["verdict"] == case.expect, "checks": checks,
            "reasons": {f"{c['audit']}:{c['metric']}": c["reason"] for c in report["checks"]},
            "why": next((f"{c['audit']}:{c['metric']} {c['status']}: {c['reason']}" for c in report["checks"]
                         if c["status"] != "pass"), ""),
            "seconds": round(time.perf_counter() - started, 1)}


#: end-to-end replicates (``--replicates``): these cases again with fresh seeds (data draw,
#: validation split, training seed); clean controls give the false-fail rate, planted defects
#: the false-pass rate of the whole pipeline
#: the hallucination clean control is not replicated: on other seeds the tiny causal LM does not
#: reliably learn the toy QA task (measured hallucination rates 0.38-0.75, CIs clear of 0.3), so a
#: replicate there is an untrained model, not a clean control with a known verdict
REPLICATED = ("clean control, fairness gate only", "clean control, accuracy gate only",
              "signal-free labels, fairness gate only", "learned label bias, fairness gate only",
              "untrained classifier head, fairness gate only",
              "always-abstaining model, hallucination gate only")
DEFAULT_REPLICATES = 6


def rate(count: int, total: int) -> dict[str, Any]:
    """A rate with its exact (Clopper-Pearson) 95% interval."""
    from auditft.stats import proportion_ci

    low, high = proportion_ci(count, total) if total else (None, None)
    return {"count": count, "total": total, "rate": count / total if total else None, "ci_low": low, "ci_high": high}


def replicate_rows(models: dict[str, Path], root: Path, seeds: range) -> list[dict[str, Any]]:
    rows = []
    for case in (c for c in FAST_CASES if c.name in REPLICATED):
        for seed in seeds:
            rows.append(run_case(case, root / f"rep-{len(rows)}", models, seed=seed))
            print(f"  replicate seed {seed}: {rows[-1]['verdict']:8} (must be {case.expect:7}) {case.name}", flush=True)
    return rows


def pipeline_error_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``false_fail``: a clean replicate with a ``fail`` check (the gate claims a defect that is
    not there); ``false_block``: a clean replicate not ``passed`` (``fail`` or ``insufficient``:
    also too little evidence); ``false_pass``: a planted-defect replicate ``passed``."""
    clean = [r for r in rows if not r["defect"]]
    planted = [r for r in rows if r["defect"]]
    return {"false_fail": rate(sum(any(c.endswith(" fail") for c in r["checks"]) for r in clean), len(clean)),
            "false_block": rate(sum(r["verdict"] != "passed" for r in clean), len(clean)),
            "false_pass": rate(sum(r["verdict"] == "passed" for r in planted), len(planted))}


#: gate-level scenarios: (name, what the truth is, gate, simulate(rng) -> (y, pred, base_pred, clusters),
#: the error counted: "fail" (a false fail: the truth meets the gate) or "pass" (a false pass))
N_ROWS = 200


def _sim_rows(p: float, clusters: int = 0) -> Callable[[Any], tuple[Any, Any, Any, Any]]:
    """Rows right with probability ``p``; with ``clusters``, every cluster of N_ROWS/clusters
    rows is right or wrong together (perfectly correlated rows)."""
    import numpy as np

    def simulate(rng: Any) -> tuple[Any, Any, Any, Any]:
        if clusters:
            right = np.repeat(rng.random(clusters) < p, N_ROWS // clusters)
            groups = np.repeat(np.arange(clusters), N_ROWS // clusters)
        else:
            right, groups = rng.random(N_ROWS) < p, None
        y = rng.integers(0, 2, N_ROWS)
        return y, np.where(right, y, 1 - y), None, groups
    return simulate


def _sim_pair(p: float, p_base: float) -> Callable[[Any], tuple[Any, Any, Any, Any]]:
    """Adapter right with probability ``p``, base with ``p_base``, independently, on the same rows
    (``p == p_base``: A/A, the same model against itself)."""
    import numpy as np

    def simulate(rng: Any) -> tuple[Any, Any, Any, Any]:
        y = rng.integers(0, 2, N_ROWS)
        return (y, np.where(rng.random(N_ROWS) < p, y, 1 - y), np.where(rng.random(N_ROWS) < p_base, y, 1 - y), None)
    return simulate


SCENARIOS = [
    ("A/A at the threshold: accuracy exactly 0.80, gate accuracy >= 0.8", {"metric": "accuracy", "min": 0.8},
     _sim_rows(0.80), "fail", False),
    ("A/A paired: adapter and base the same model (0.80 each), gate accuracy_delta >= 0",
     {"metric": "accuracy_delta", "min": 0.0}, _sim_pair(0.80, 0.80), "fail", False),
    ("correlated rows at the threshold (20 clusters of 10), rows resampled", {"metric": "accuracy", "min": 0.8},
     _sim_rows(0.80, clusters=20), "fail", False),
    ("correlated rows at the threshold (20 clusters of 10), clusters resampled (data.cluster_column)",
     {"metric": "accuracy", "min": 0.8}, _sim_rows(0.80, clusters=20), "fail", True),
    ("a model 0.10 below the gate: accuracy 0.70, gate accuracy >= 0.8", {"metric": "accuracy", "min": 0.8},
     _sim_rows(0.70), "pass", False),
    ("a model 0.05 below the gate: accuracy 0.75, gate accuracy >= 0.8", {"metric": "accuracy", "min": 0.8},
     _sim_rows(0.75), "pass", False),
    ("a model 0.05 worse than base: 0.75 vs 0.80, gate accuracy_delta >= 0",
     {"metric": "accuracy_delta", "min": 0.0}, _sim_pair(0.75, 0.80), "pass", False),
]


def gate_error_rates(replicates: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Seeded replicates of each scenario through core's gate (``auditft.gate.decide_specs`` on
    the accuracy audit's own statistics, ``auditft.stats.bootstrap_metrics``, 1,000 resamples):
    how often the gate fails a model that meets its threshold exactly (the worst case for a
    false fail; nominal at most 5%, the rule's one-sided level is 2.5%) and how often it passes
    a model that misses it."""
    import numpy as np

    from auditft.gate import decide_specs
    from auditft.records import AuditResult, Metric
    from auditft.stats import bootstrap_metrics
    from auditft.suite import AuditSpec
    from auditft.testing import isolated_plugin_manager

    audits = isolated_plugin_manager().audits
    out = []
    for i, (name, bound, simulate, error, clustered) in enumerate(SCENARIOS):
        rng = np.random.default_rng([seed, i])
        spec = AuditSpec(kind="accuracy", gates=[{**bound, "rationale": "benchmark"}])
        statuses: dict[str, int] = {}
        for r in range(replicates):
            y, pred, base, groups = simulate(rng)
            figures = bootstrap_metrics(y, pred, 2, base_pred=base if base is not None else pred, seed=r,
                                        clusters=groups if clustered else None)
            result = AuditResult(kind="accuracy", metrics={k: Metric.from_figure(v) for k, v in figures.items()})
            (check,) = decide_specs([spec], {"accuracy": result}, audits)
            statuses[check.status] = statuses.get(check.status, 0) + 1
        out.append({"scenario": name, "n": N_ROWS, "replicates": replicates, "error": f"false {error}",
                    "statuses": statuses, **rate(statuses.get(error, 0), replicates)})
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    planted = [r for r in rows if r["defect"]]
    controls = [r for r in rows if not r["defect"]]
    return {"caught": sum(r["verdict"] == "blocked" for r in planted), "planted": len(planted),
            "false_alarms": sum(r["verdict"] == "blocked" for r in controls), "controls": len(controls)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | planted defect | must be | verdict | first non-passing check |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['defect'] or '(control)'} | {r['expect']} | "
                     f"{r['verdict']}{'' if r['ok'] else ' **WRONG**'} | {r['why'][:160]} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=DEFAULT_REPLICATES,
                        help="end-to-end replicate seeds per replicated case (0: none)")
    parser.add_argument("--gate-replicates", type=int, default=1000, help="replicates per gate-level scenario")
    args = parser.parse_args(argv)
    os.environ.setdefault("AUDITFT_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    started = time.perf_counter()
    cases = list(FAST_CASES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="auditft-validity-") as tmp:
        models = tiny_models(Path(tmp))
        for i, case in enumerate(cases):
            rows.append(run_case(case, Path(tmp) / f"case-{i}", models))
            print(f"{rows[-1]['verdict']:8} (must be {case.expect:7}) {case.name}  [{rows[-1]['seconds']} s]",
                  flush=True)
        replicates = replicate_rows(models, Path(tmp), range(1, args.replicates + 1))
    totals = summarise(rows)
    pipeline = pipeline_error_rates(replicates)
    gate_rates = gate_error_rates(args.gate_replicates)
    print(table(rows))
    print(f"caught {totals['caught']}/{totals['planted']} planted defects; "
          f"false alarms {totals['false_alarms']}/{totals['controls']} controls")
    for what, r in pipeline.items():
        if r["total"]:
            print(f"end to end, {what.replace('_', '-')}: {r['count']}/{r['total']} replicates "
                  f"({r['rate']:.1%}, 95% CI {r['ci_low']:.1%}-{r['ci_high']:.1%})")
    for r in gate_rates:
        print(f"gate level, {r['error']} {r['count']}/{r['replicates']} ({r['rate']:.1%}, CI up to {r['ci_high']:.1%}): "
              f"{r['scenario']}")
    seconds = round(time.perf_counter() - started, 1)
    print(f"{seconds} s")
    out = ROOT / "benchmarks" / "results" / "validity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"totals": totals, "cases": rows, "error_rates": {
        "end_to_end": {**pipeline, "seeds": args.replicates, "cases": list(REPLICATED)},
        "gate_level": gate_rates}, "replicates": replicates, "seconds": seconds}, indent=1), encoding="utf-8")
    # the fast cases right, no planted-defect replicate passed, and false fails within the nominal
    # 5% (the rows-resampled correlated scenario is the counter-example that shows why clusters matter)
    ok = all(r["ok"] for r in rows) and pipeline["false_pass"]["count"] == 0
    nominal = (all(r["rate"] <= 0.05 for r in gate_rates if r["error"] == "false fail" and "rows resampled" not in r["scenario"])
               and (pipeline["false_fail"]["rate"] or 0.0) <= 0.05)
    return 0 if ok and nominal else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
