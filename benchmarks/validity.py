"""Planted-defect benchmark: does the gate block what it must, and pass what it should?

Each case is a suite with a planted defect (signal-free labels, a learned label bias, a model
that always abstains, a collapsed classifier, tiny data, collapsed k-fold models, ...) or a
clean control, and the verdict it must get. The suites gate only what a hurried user would
gate (one fairness metric, one hallucination metric, one fold-spread metric), so a model that
does nothing is caught by core's degeneracy rules, not by a lucky choice of gates.

    python benchmarks/validity.py            # the fast cases on tiny random models (~2 min)
    python benchmarks/validity.py --real     # also the shipped models (MiniLM, SmolLM2; ~15 min)

Prints one row per case and ``caught/planted`` and ``false alarms/controls``; writes
``benchmarks/results/validity.json``. ``tests/test_validity.py`` runs the fast cases in
``make test``.
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
HALLUCINATION_ONLY = [{"kind": "hallucination", "options": {"probes": "probes.jsonl", "consistency_probes": 0},
                       "gates": [{"metric": "hallucination_rate", "max": 0.3, "rationale": "hallucination only"}]}]


@dataclass(frozen=True)
class Case:
    name: str
    defect: str | None  # None: a clean control
    expect: str  # the verdict the gate must give: "passed" | "blocked"
    build: Callable[[Path, dict[str, Path]], Path]  # (directory, tiny models) -> suite path
    task: str = "classification"


def _classification(data: dict[str, Any], audits: list[dict[str, Any]], tuner: dict[str, Any] | None = None,
                    **suite: Any) -> Callable[[Path, dict[str, Path]], Path]:
    def build(directory: Path, models: dict[str, Path]) -> Path:
        from auditft.testing import toy_classification_data, write_suite

        toy_classification_data(directory, **data)
        return write_suite(directory / "suite.yaml", model_dir=models["classification"], tuner=tuner or LORA,
                           audits=audits, **suite)
    return build


def toy_probes(path: Path) -> Path:
    """Hallucination probes for the toy QA task: the known capitals (answerable) and the
    invented countries (unanswerable), in the tiny tokenizer's words."""
    from auditft.testing import TOY_CAPITALS

    rows = [{"id": f"ans-{i}", "type": "answerable", "prompt": f"what is the capital of {c} ?", "reference": city}
            for i, (c, city) in enumerate(sorted(TOY_CAPITALS.items()))]
    rows += [{"id": f"una-{i}", "type": "unanswerable", "prompt": f"what is the capital of {c} ?"}
             for i, c in enumerate(("zarnovia", "quelbia", "morvania", "tesland"))]
    rows = rows * 2  # 32 probes: above the audit's evidence floor of 20
    path.write_text("".join(json.dumps({**r, "id": f"{r['id']}-{k}"}) + "\n" for k, r in enumerate(rows)),
                    encoding="utf-8")
    return path


def _generation(abstain: bool, audits: list[dict[str, Any]]) -> Callable[[Path, dict[str, Path]], Path]:
    def build(directory: Path, models: dict[str, Path]) -> Path:
        from auditft.testing import toy_generation_data, write_suite

        train, test = toy_generation_data(directory, copies=6)
        if abstain:  # planted: every training answer is "unknown", so the model learns to decline
            for path in (train,):
                rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
                path.write_text("".join(json.dumps({**r, "response": "unknown"}) + "\n" for r in rows),
                                encoding="utf-8")
        toy_probes(directory / "probes.jsonl")
        data = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7,
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

#: the biased data has fewer urgent rows; a few more epochs let the model learn the bias itself
LONGER = {**LORA, "training": {**TRAINING, "epochs": 10}}

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
    Case("clean control, hallucination gate only", None, "passed",
         _generation(False, HALLUCINATION_ONLY), task="generation"),
    Case("always-abstaining model, hallucination gate only", "every training answer is 'unknown'", "blocked",
         _generation(True, HALLUCINATION_ONLY), task="generation"),
]


def tiny_models(root: Path) -> dict[str, Path]:
    from auditft.testing import tiny_causal_lm, tiny_classifier

    return {"classification": tiny_classifier(root / "tiny-bert"), "generation": tiny_causal_lm(root / "tiny-llama")}


def run_case(case: Case, directory: Path, models: dict[str, Path]) -> dict[str, Any]:
    """Run one case end to end (``auditft run``'s own code path); its verdict and checks."""
    from auditft.run import execute, prepare
    from auditft.testing import isolated_plugin_manager

    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    suite = case.build(directory, models)
    pm = isolated_plugin_manager()
    report = execute(prepare(suite, pm), pm, reports=directory / "reports", author="validity")
    checks = [f"{c['audit']}:{c['metric']} {c['status']}" for c in report["checks"]]
    return {"case": case.name, "defect": case.defect, "expect": case.expect, "verdict": report["verdict"],
            "ok": report["verdict"] == case.expect, "checks": checks,
            "reasons": {f"{c['audit']}:{c['metric']}": c["reason"] for c in report["checks"]},
            "why": next((f"{c['audit']}:{c['metric']} {c['status']}: {c['reason']}" for c in report["checks"]
                         if c["status"] != "pass"), ""),
            "seconds": round(time.perf_counter() - started, 1)}


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
    import os

    os.environ.setdefault("AUDITFT_PROGRESS", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    cases = list(FAST_CASES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="auditft-validity-") as tmp:
        models = tiny_models(Path(tmp))
        for i, case in enumerate(cases):
            rows.append(run_case(case, Path(tmp) / f"case-{i}", models))
            print(f"{rows[-1]['verdict']:8} (must be {case.expect:7}) {case.name}  [{rows[-1]['seconds']} s]",
                  flush=True)
    totals = summarise(rows)
    print(table(rows))
    print(f"caught {totals['caught']}/{totals['planted']} planted defects; "
          f"false alarms {totals['false_alarms']}/{totals['controls']} controls")
    out = ROOT / "benchmarks" / "results" / "validity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"totals": totals, "cases": rows}, indent=1), encoding="utf-8")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
