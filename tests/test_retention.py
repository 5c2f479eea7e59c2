"""The ``retention`` audit: metric math on hand-made correctness vectors (paired drop CI,
McNemar, forgotten probes), probe files (shipped, the suite's own, bad ones), the generator,
options errors, gates on a forgetting and a knowing-nothing model, the kit, the report section,
and one run through the real pipeline on a base model that knows general facts."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from auditft import gate
from auditft.default_plugins.audits.retention import RetentionAudit, RetentionOptions, auditft_report_sections
from auditft.default_plugins.audits.retention.metrics import retention_metrics
from auditft.default_plugins.audits.retention.probes import bundled_probes, load_probes, not_held_out, select
from auditft.errors import DataError, SuiteError
from auditft.jobs import AuditJob
from auditft.suite import check_plugins, parse_suite

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "suites" / "data" / "make_retention_probes.py"


class FakeSession:
    """Stands in for ``ModelSession``: canned greedy answers per model, ``answer(which, prompt)``."""

    def __init__(self, answer):
        self.answer = answer
        self.calls: list[tuple[str, int]] = []

    def generate(self, prompts, *, which="adapter", max_new_tokens=None):
        self.calls.append((which, len(prompts)))
        return [self.answer(which, p) for p in prompts]


def _job(tmp_path, session, training=(), **options):
    suite = SimpleNamespace(resolve=lambda rel: Path(rel) if Path(rel).is_absolute() else tmp_path / rel)
    data = SimpleNamespace(train=[SimpleNamespace(text=t) for t in training], validation=[])
    return AuditJob(suite=suite, task="generation", data=data, options=RetentionOptions(**options), seed=3,
                    models=session, work_dir=tmp_path)


def _write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _sums(n: int, category: str = "sums", start: int = 0) -> list[dict]:
    return [{"id": f"{category}-{i}", "category": category, "prompt": f"What is {i} + 100?",
             "reference": str(i + 100)} for i in range(start, start + n)]


# -- the metric math, worked by hand ---------------------------------------------------------

ADAPTER = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1]
BASE = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1]


def test_metric_math_on_a_hand_worked_example():
    from scipy.stats import beta

    m = retention_metrics(ADAPTER, BASE, ["x"] * 10, seed=0, n_boot=500, min_base_correct=5)
    acc, drop, gone = m["retained_accuracy"], m["retention_drop"], m["forgotten_rate"]
    assert acc.value == pytest.approx(0.6) and acc.base_value == pytest.approx(0.8) and acc.n == 10
    # the drop is base minus adapter, on the base-correct probes' count
    assert drop.value == pytest.approx(0.2) and drop.n == 8 and drop.min_n == 5
    assert drop.ci_low <= 0.2 <= drop.ci_high
    # McNemar: 1 probe only the adapter gets (index 4), 3 only the base (2, 3, 8): p = 2 * 5/16
    mcnemar = drop.details["mcnemar"]
    assert (mcnemar["only_this_correct"], mcnemar["only_other_correct"]) == (1, 3)
    assert mcnemar["p_value"] == pytest.approx(0.625)
    # forgotten: 3 of the 8 base-correct probes, exact Clopper-Pearson interval
    assert gone.value == pytest.approx(3 / 8) and gone.n == 8 and gone.details["forgotten"] == 3
    assert gone.ci_low == pytest.approx(beta.ppf(0.025, 3, 6)) and gone.ci_high == pytest.approx(beta.ppf(0.975, 4, 5))
    assert "retention_drop_max_category" not in m  # one category: no maximum to take


def test_the_drop_interval_is_paired():
    """The adapter equals the base except on 2 of 60 probes it forgets: on every paired resample
    the drop is >= 0, so the CI does not reach below 0 (two independent resamples would give
    an interval about +-0.15 wide around 0.033)."""
    base = [1.0] * 50 + [0.0] * 10
    adapter = list(base)
    adapter[3] = adapter[17] = 0.0
    drop = retention_metrics(adapter, base, ["x"] * 60, seed=1, n_boot=1000)["retention_drop"]
    assert drop.value == pytest.approx(2 / 60)
    assert drop.ci_low >= 0.0 and drop.ci_high < 0.1
    assert "paired" in drop.details["interval"]


def test_category_maximum_and_its_floor():
    cats = ["a"] * 6 + ["b"] * 6
    base = [1] * 12
    adapter = [1, 1, 1, 0, 0, 0] + [1] * 6
    m = retention_metrics(adapter, base, cats, seed=0, n_boot=300, min_base_correct=4)
    worst = m["retention_drop_max_category"]
    assert worst.value == pytest.approx(0.5) and worst.details["category"] == "a"
    assert worst.details["per_category"] == {"a": pytest.approx(0.5), "b": pytest.approx(0.0)}
    assert worst.ci_low <= 0.5 <= worst.ci_high and worst.n == 6 and worst.min_n == 4
    assert m["retention_drop"].value == pytest.approx(0.25)


def test_a_base_that_knows_nothing_has_no_evidence():
    m = retention_metrics([0] * 30, [0] * 30, ["x"] * 30, seed=0, n_boot=200)
    assert m["retention_drop"].value == 0.0 and m["retention_drop"].n == 0 and m["retention_drop"].min_n == 20
    assert m["forgotten_rate"].n == 0 and (m["forgotten_rate"].ci_low, m["forgotten_rate"].ci_high) == (0.0, 1.0)


# -- the audit on canned answers ---------------------------------------------------------------


def _answers(probes, forget=(), knows=True):
    """A session whose base answers every probe (chatty), and whose adapter forgets ``forget``."""
    refs = {p["prompt"]: p["reference"] for p in probes}

    def answer(which, prompt):
        if not knows:
            return "unknown"
        if which == "adapter" and prompt in forget:
            return "I think it is 3."
        return f"The answer is {refs[prompt]}."
    return FakeSession(answer)


def test_audit_lists_the_forgotten_probes_and_excludes_training_prompts(tmp_path):
    rows = _sums(30, "sums") + _sums(10, "more", start=50)
    _write(tmp_path / "own.jsonl", rows)
    forget = {rows[2]["prompt"], rows[5]["prompt"], rows[33]["prompt"]}
    # the tuner saw probe 0's prompt (another spelling): it is not held out
    training = [rows[0]["prompt"].upper().replace("?", " ?")]
    session = _answers(rows, forget)
    result = RetentionAudit(RetentionOptions(probes="own.jsonl", n_boot=300, min_base_correct=5)).run(
        _job(tmp_path, session, training=training))
    ev, m = result.evidence, result.metrics
    assert ev["n"] == 39 and ev["excluded"] == {"count": 1, "ids": ["sums-0"]}
    assert ev["base_correct"] == 39 and ev["adapter_correct"] == 36 and ev["gained"] == 0
    assert [f["id"] for f in ev["forgotten"]] == ["sums-2", "sums-5", "more-53"]
    first = ev["forgotten"][0]
    assert first["answer"] == "I think it is 3." and first["base_answer"] == "The answer is 102."
    assert first["reference"] == "102" and first["prompt"] == rows[2]["prompt"]
    assert m["retention_drop"].value == pytest.approx(3 / 39) and m["forgotten_rate"].value == pytest.approx(3 / 39)
    assert m["retention_drop_max_category"].details["category"] == "more"
    assert m["retention_drop_max_category"].value == pytest.approx(0.1)
    assert ev["probe_file"]["bundled"] is False and ev["probe_file"]["path"].endswith("own.jsonl")
    assert {c["category"]: c["forgotten"] for c in ev["categories"]} == {"more": 1, "sums": 2}
    assert "3 of the 39 probes the base answered correctly are now wrong" in ev["summary"]
    assert any("1 of 40 probes were excluded" in note for note in result.notes)
    assert session.calls == [("adapter", 39), ("base", 39)]
    json.dumps(result.to_dict())


def test_max_examples_caps_the_forgotten_list(tmp_path):
    rows = _sums(25)
    _write(tmp_path / "own.jsonl", rows)
    result = RetentionAudit(RetentionOptions(probes="own.jsonl", n_boot=200, max_examples=2)).run(
        _job(tmp_path, _answers(rows, {r["prompt"] for r in rows[:10]})))
    assert [f["id"] for f in result.evidence["forgotten"]] == ["sums-0", "sums-1"]
    assert result.metrics["forgotten_rate"].details["forgotten"] == 10


def test_bundled_probes_by_default_and_categories_option(tmp_path):
    probes = [{"prompt": p.prompt, "reference": p.reference} for p in load_probes(bundled_probes())]
    result = RetentionAudit(RetentionOptions(n_boot=200, categories=["arithmetic"], max_probes=30)).run(
        _job(tmp_path, _answers(probes)))
    assert result.evidence["probe_file"]["bundled"] is True and result.evidence["n"] == 30
    assert [c["category"] for c in result.evidence["categories"]] == ["arithmetic"]
    assert result.metrics["retained_accuracy"].value == 1.0 and result.metrics["retention_drop"].value == 0.0


def test_run_time_errors_are_one_line(tmp_path):
    rows = _sums(5)
    _write(tmp_path / "own.jsonl", rows)
    with pytest.raises(DataError) as err:
        RetentionAudit(RetentionOptions(probes="own.jsonl", categories=["geography"])).run(
            _job(tmp_path, _answers(rows)))
    assert "no probe has category 'geography'" in str(err.value) and "sums" in str(err.value)
    with pytest.raises(DataError) as err:
        RetentionAudit(RetentionOptions(probes="own.jsonl")).run(
            _job(tmp_path, _answers(rows), training=[r["prompt"] for r in rows]))
    assert "every probe (5) occurs in the fine-tuning data" in str(err.value) and "\n" not in str(err.value)


def test_select_and_not_held_out():
    probes = load_probes(bundled_probes())
    picked = select(probes, None, 6)
    assert [p.category for p in picked] == ["arithmetic"] * 2 + ["unit_conversion"] * 2 + ["general_facts"] * 2
    assert select(probes, ["general_facts"], None) == [p for p in probes if p.category == "general_facts"]
    assert select(probes, None, 10_000) == probes
    hit = not_held_out(probes[:3], ["what is 15 + 2", "unrelated"])
    assert [p.id for p in hit] == ["a-001"]


# -- gates: a forgetting adapter fails, a base that knows nothing is no evidence ---------------


def _gate_suite(tmp_path, task="generation"):
    raw = {"name": "r", "task": task, "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"},
           "audits": [{"kind": "retention", "gates": [
               {"metric": "retention_drop", "max": 0.1, "rationale": "keeps what the base knew"}]}]}
    return parse_suite(raw, tmp_path / "s.yaml")


@pytest.mark.parametrize(("case", "status"), [
    ("keeps", "pass"),  # the adapter answers everything the base answers
    ("constant", "fail"),  # the adapter says "unknown" to everything: a model doing nothing
    ("forgets_arithmetic", "fail"),
    ("knows_nothing", "insufficient"),  # neither model knows anything: drop 0, nothing to forget
])
def test_retention_gate(tmp_path, pm, case, status):
    suite = _gate_suite(tmp_path)
    check_plugins(suite, pm)
    probes = [{"prompt": p.prompt, "reference": p.reference, "category": p.category}
              for p in load_probes(bundled_probes())]
    forget = {p["prompt"] for p in probes if p["category"] == "arithmetic"} if case == "forgets_arithmetic" else set()
    session = _answers(probes, forget, knows=case != "knows_nothing")
    if case == "constant":
        session = FakeSession(lambda which, prompt, inner=session: "unknown" if which == "adapter"
                              else inner.answer(which, prompt))
    result = RetentionAudit(RetentionOptions(n_boot=300)).run(_job(tmp_path, session))
    checks = gate.decide(suite, {"retention": result}, pm.audits)
    assert [(c.metric, c.status) for c in checks] == [("retention_drop", status)], [c.reason for c in checks]
    if case == "knows_nothing":
        assert "only 0 examples" in checks[0].reason
        assert any("answers only 0 of 150 probes correctly" in note for note in result.notes)


# -- probe files and options ---------------------------------------------------------------------

GOOD = {"id": "x1", "category": "sums", "prompt": "What is 2 + 2?", "reference": "4"}


@pytest.mark.parametrize(("rows", "line", "needle"), [
    ([GOOD, '{"id": "x2", "category": '], 2, "invalid JSON"),
    ([GOOD, {"id": "x2", "category": "sums", "prompt": "q"}], 2, "missing key 'reference'"),
    ([GOOD, {"id": "x2", "prompt": "q", "reference": "r"}], 2, "missing key 'category'"),
    ([GOOD, GOOD], 2, "duplicate id 'x1' (first on line 1)"),
    ([GOOD, {**GOOD, "id": "x2", "answer": "4"}], 2, "unknown key 'answer'"),
    ([GOOD, "[1, 2]"], 2, "JSON object"),
    ([{**GOOD, "reference": " "}], 1, "'reference' must be a non-empty string"),
    ([GOOD, {**GOOD, "id": "x2", "alternatives": "four"}], 2, "'alternatives' must be a list"),
    ([GOOD, "", {**GOOD, "id": 3}], 3, "'id' must be a non-empty string"),  # blank lines keep numbering
])
def test_bad_probe_file_is_one_line_naming_file_and_row(tmp_path, rows, line, needle):
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_probes(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ") and needle in message and "\n" not in message


def test_missing_and_empty_probe_files(tmp_path):
    with pytest.raises(DataError, match="probe file not found"):
        load_probes(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no probes"):
        load_probes(_write(tmp_path / "empty.jsonl", ["", "  "]))


def test_the_suites_own_probe_file_loads_with_alternatives(tmp_path):
    path = _write(tmp_path / "own.jsonl", [{**GOOD, "alternatives": ["four"], "source": "me"}])
    (probe,) = load_probes(path)
    assert probe.answers == ("4", "four") and probe.source == "me" and probe.line == 1


def _suite(tmp_path, options, task="generation"):
    raw = {"name": "r", "task": task, "model": {"base": "m"}, "data": {"train": "t.jsonl"},
           "tuner": {"kind": "lora"}, "audits": [{"kind": "retention", "options": options}]}
    return parse_suite(raw, tmp_path / "s.yaml")


@pytest.mark.parametrize(("options", "needle"), [
    ({"n_boot": 10}, "audits[0].options.n_boot"),
    ({"min_base_correct": 0}, "audits[0].options.min_base_correct"),
    ({"categories": []}, "audits[0].options.categories"),
    ({"probe": "x.jsonl"}, "audits[0].options.probe"),
    ({"probes": " "}, "audits[0].options.probes"),
    ({"probes": "missing.jsonl"}, "missing.jsonl: probe file not found"),  # relative to the suite file
])
def test_bad_options_are_one_line_errors(tmp_path, pm, options, needle):
    with pytest.raises(SuiteError) as err:
        check_plugins(_suite(tmp_path, options), pm)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_probe_file_fails_suite_validation(tmp_path, pm):
    path = _write(tmp_path / "bad.jsonl", [GOOD, {"id": "x2", "category": "sums", "prompt": "q"}])
    for given in (str(path), "bad.jsonl"):  # absolute, or relative to the suite's directory
        with pytest.raises(SuiteError) as err:
            check_plugins(_suite(tmp_path, {"probes": given}), pm)
        message = str(err.value)
        assert "audits[0].options.probes" in message and f"{path}:2: missing key 'reference'" in message
        assert "\n" not in message
    _write(tmp_path / "good.jsonl", [GOOD])
    check_plugins(_suite(tmp_path, {"probes": "good.jsonl"}), pm)


def test_classification_suite_cannot_name_the_audit(tmp_path, pm):
    with pytest.raises(SuiteError) as err:
        check_plugins(_suite(tmp_path, {}, task="classification"), pm)
    assert "does not support task 'classification'" in str(err.value) and "\n" not in str(err.value)


# -- the shipped probes and their generator ------------------------------------------------------


def test_shipped_probes():
    probes = load_probes(bundled_probes())
    assert {c: sum(p.category == c for p in probes) for c in {p.category for p in probes}} == {
        "arithmetic": 50, "unit_conversion": 50, "general_facts": 50}
    assert len({p.prompt for p in probes}) == 150
    for p in probes:
        assert p.source and "make_retention_probes.py" in p.source
        if p.category == "arithmetic":
            operands = re.findall(r"\d+", p.prompt)
            assert len(operands) == 2 and p.reference not in operands, p  # repeating the question is wrong
        if p.category == "unit_conversion":
            assert p.reference not in re.findall(r"\d+", p.prompt), p


def _generator():
    spec = importlib.util.spec_from_file_location("make_retention_probes", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_check_passes_and_is_deterministic(tmp_path):
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "up to date" in done.stdout, done.stdout + done.stderr
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True, capture_output=True,
                   timeout=60)
    assert (tmp_path / "probes.jsonl").read_bytes() == bundled_probes().read_bytes()


def test_generator_check_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    module = _generator()
    stale = tmp_path / "probes.jsonl"
    stale.write_bytes(bundled_probes().read_bytes().replace(b'"17"', b'"18"', 1))
    monkeypatch.setattr(module, "OUTPUT", stale)
    assert module.main(["--check"]) == 1 and "differs from the generator" in capsys.readouterr().out
    monkeypatch.setattr(module, "OUTPUT", tmp_path / "absent.jsonl")
    assert module.main(["--check"]) == 1


# -- the kit and the report section --------------------------------------------------------------


def test_retention_passes_the_kit():
    from auditft.testing import check_audit

    result = check_audit(importlib.import_module("auditft.default_plugins.audits.retention"), "retention")
    assert set(result.metrics) == {"retained_accuracy", "retention_drop", "forgotten_rate",
                                   "retention_drop_max_category"}
    assert result.metrics["retained_accuracy"].base_value is not None


def test_report_section_escapes_model_text(tmp_path):
    rows = _sums(25) + _sums(5, "more", start=40)
    _write(tmp_path / "own.jsonl", rows)
    evil = "<script>alert(1)</script>"
    session = _answers(rows)
    session = FakeSession(lambda which, prompt, inner=session: evil if which == "adapter" and "4" in prompt
                          else inner.answer(which, prompt))
    result = RetentionAudit(RetentionOptions(probes="own.jsonl", n_boot=200)).run(_job(tmp_path, session))
    assert result.evidence["forgotten"]
    report = {"task": "generation", "audits": {"retention": json.loads(json.dumps(result.to_dict()))}}
    (section,) = auditft_report_sections(report=report)
    assert section.anchor == "audit-retention" and section.order == 55 and section.title == "Retention"
    assert "<script>" not in section.html and "&lt;script&gt;" in section.html
    assert "Forgotten: the base model answered these correctly" in section.html and "<svg" in section.html
    for name in ("retained_accuracy", "retention_drop", "forgotten_rate", "retention_drop_max_category"):
        assert f"<td>{name}</td>" in section.html
    assert auditft_report_sections(report={"audits": {"retention": {"error": "x"}}}) == []
    assert auditft_report_sections(report={"audits": {}}) == []


# -- end to end: a base that knows general facts, fine-tuned until it forgets them --------------


@pytest.fixture(scope="module")
def knowing_base(tmp_path_factory):
    from auditft.testing import knowing_causal_lm

    return knowing_causal_lm(tmp_path_factory.mktemp("knowing") / "model")


def test_end_to_end_forgetting_is_reported_and_blocked(tmp_path, knowing_base):
    from auditft.plugins import make_plugin_manager
    from auditft.run import execute, prepare
    from auditft.testing import toy_facts, toy_generation_data, write_suite

    toy_generation_data(tmp_path, copies=4)
    facts = list(toy_facts().items())
    _write(tmp_path / "facts.jsonl", [{"id": f"f{i}", "category": "weekdays" if "day" in q else "numbers",
                                       "prompt": q, "reference": a} for i, (q, a) in enumerate(facts)])
    suite = write_suite(
        tmp_path / "s.yaml", model_dir=knowing_base, task="generation",
        data={"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7},
        # every weight trains at a high rate on the capitals, which never ask a fact: it forgets
        tuner={"kind": "full", "training": {"epochs": 12, "learning_rate": 0.01, "batch_size": 8, "max_length": 32,
                                            "eval_batch_size": 64, "logging_steps": 5}},
        generation={"max_new_tokens": 4},
        audits=[{"kind": "retention", "options": {"probes": "facts.jsonl", "n_boot": 300},
                 "gates": [{"metric": "retention_drop", "max": 0.1, "rationale": "keeps the base's facts"}]}])
    pm = make_plugin_manager(entry_points=False, env={})
    report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="tester")
    run_dir = next(d for d in (tmp_path / "reports").iterdir() if d.is_dir())
    audit = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["audits"]["retention"]
    assert audit["error"] is None, audit["error"]
    m, ev = audit["metrics"], audit["evidence"]
    assert ev["n"] == len(facts) and ev["base_correct"] >= 40  # the base knows its facts
    assert m["retained_accuracy"]["base_value"] == pytest.approx(ev["base_correct"] / len(facts))
    for name in ("retained_accuracy", "retention_drop", "forgotten_rate", "retention_drop_max_category"):
        assert m[name]["ci_low"] <= m[name]["value"] <= m[name]["ci_high"], name
    assert m["retention_drop"]["n"] == ev["base_correct"] and m["retention_drop"]["ci_low"] > 0.3
    assert ev["forgotten"] and all(f["prompt"] in dict(facts) for f in ev["forgotten"])
    assert report["verdict"] == "blocked"
    (check,) = [c for c in report["checks"] if c["audit"] == "retention"]
    assert check["status"] == "fail"
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="audit-retention"' in html and "Forgotten: the base model answered these correctly" in html
    assert ev["forgotten"][0]["prompt"] in html
