"""The ``robustness`` audit: each perturbation family (seeded, deterministic, meaning kept,
identity swaps both ways), the word lists and options, the statistics, the audit on fake sessions
(a pronoun-keyed adapter flips, its base does not), the kit for both tasks, the report section,
and one end-to-end run on the tiny classifier."""

from __future__ import annotations

import importlib
import json
import random
import re

import numpy as np
import pytest

from auditft.default_plugins.audits.robustness import perturbations as P
from auditft.default_plugins.audits.robustness import scoring
from auditft.default_plugins.audits.robustness.audit import RobustnessAudit
from auditft.default_plugins.audits.robustness.metrics import METRIC_DIRECTIONS, PROPORTIONS, TRIVIAL_METRICS
from auditft.default_plugins.audits.robustness.options import RobustnessOptions
from auditft.default_plugins.audits.robustness.wordlists import load_word_lists

TEXT = "patient reports severe pain since yesterday with no history of fever and cough today"


@pytest.fixture(scope="module")
def lists():
    return load_word_lists(None, {"sex": ["female", "male", "female"]})


def rng(key="row-1", family="char_noise", seed=0):
    return P.row_rng(seed, family, key)


# -- char_noise ------------------------------------------------------------------------------------------


def test_char_noise_is_seeded_and_deterministic():
    first = P.char_noise(TEXT, rng(), rate=0.2)
    assert first == P.char_noise(TEXT, rng(), rate=0.2)  # same row, same seed: the same typos
    others = {P.char_noise(TEXT, rng(key=f"row-{k}"), rate=0.2) for k in range(20)}
    assert len(others) > 10  # other rows get other typos
    assert P.char_noise(TEXT, rng(seed=1), rate=0.2) != first or P.char_noise(TEXT, rng(seed=2), rate=0.2) != first


def test_char_noise_always_changes_the_text_but_only_a_few_words():
    for k in range(200):
        out = P.char_noise(TEXT, rng(key=str(k)), rate=0.1)
        assert out is not None and out != TEXT
        # letters only, case folded: a typo is one letter-level edit in about a tenth of the words
        a, b = re.sub(r"[^a-z]", "", TEXT.lower()), re.sub(r"[^a-z]", "", out.lower())
        assert abs(len(a) - len(b)) <= 2
        changed = [w for w, v in zip(TEXT.split(), out.split()) if w != v]
        assert len(TEXT.split()) - 1 <= len(out.split()) <= len(TEXT.split()) + 1
        if len(out.split()) == len(TEXT.split()):
            assert len(changed) <= 2, out


def test_char_noise_covers_each_kind_of_typo():
    outs = [P.char_noise("Severe pain, since yesterday", rng(key=str(k)), rate=0.5) for k in range(300)]
    assert any("  " in o for o in outs)  # a doubled space
    assert any(o.count(" ") < 3 for o in outs)  # a dropped space
    assert any(re.search(r"[;!?.]", o) or "pain since" in o for o in outs)  # punctuation added or removed
    assert any("SEVERE" in o or "severe" in o or "PAIN" in o for o in outs)  # case flipped
    assert any(re.search(r"(\w)\1", o.replace("ee", "")) for o in outs)  # a doubled letter


def test_char_noise_without_a_word_does_not_apply():
    assert P.char_noise("123 456 !!", rng()) is None
    assert P.char_noise("", rng()) is None


# -- word_edits --------------------------------------------------------------------------------------------


def test_word_edits_rewrite_both_ways_and_keep_the_meaning(lists):
    def edit(text):
        return P.word_edits(text, rng(family="word_edits"), lists=lists, rate=1.0)

    assert edit("I do not know") == "I don't know"
    assert edit("I don't know") == "I do not know"
    assert edit("Don't go") == "Do not go"  # case kept
    assert edit("tea with milk") == "tea w/ milk"
    assert edit("tea w/ milk") == "tea with milk"
    assert edit("took 3 pills") == "took three pills"
    assert edit("took three pills") == "took 3 pills"
    assert edit("forty-two days") == "42 days"
    assert edit("paid 1000 dollars") == "paid 1,000 dollars"
    assert edit("paid 1,000 dollars") == "paid 1000 dollars"


def test_word_edits_leave_alone_what_may_not_be_a_quantity(lists):
    for text in ("born in 1999", "a dose of 2.5 mg", "at 10:30", "code 007", "room #12", "no one came", "50% off"):
        assert P.word_edits(text, rng(family="word_edits"), lists=lists, rate=1.0) is None, text


def test_word_edits_rate_picks_a_seeded_share_of_the_sites(lists):
    text = "I do not know and I did not see 3 cats with 4 dogs"
    sites = P.edit_sites(text, lists)
    assert len(sites) == 6
    one = P.word_edits(text, rng(family="word_edits"), lists=lists, rate=0.1)
    assert one == P.word_edits(text, rng(family="word_edits"), lists=lists, rate=0.1)
    changed = sum(a != b for a, b in zip(text.split(), one.split())) if len(one.split()) == len(text.split()) else 1
    assert one != text and changed <= 2
    every = P.word_edits(text, rng(family="word_edits"), lists=lists, rate=1.0)
    assert every == "I don't know & I didn't see three cats w/ four dogs"


def test_number_words_round_trip():
    for n in range(100):
        assert P.words_number(P.number_words(n)) == n
    assert P.number_words(42) == "forty-two" and P.words_number("forty two") == 42
    with pytest.raises(ValueError):
        P.number_words(100)


# -- identity_swap -----------------------------------------------------------------------------------------


def swap(text, lists, key="r"):
    return P.identity_swap(text, rng(key=key, family="identity_swap"), lists=lists)


def test_identity_swap_works_both_directions_and_keeps_case(lists):
    assert swap("he said that he was tired", lists) == "she said that she was tired"
    assert swap("she said that she was tired", lists) == "he said that he was tired"
    assert swap("He came", lists) == "She came" and swap("SHE came", lists) == "HE came"
    assert swap("a female patient", lists) == "a male patient"  # the suite's group column values
    assert swap("a male patient", lists) == "a female patient"


def test_identity_swap_moves_a_name_to_the_other_group_and_the_same_way_throughout(lists):
    names = next(s for s in lists.identity if s.name.startswith("names:ssa"))
    male, female = names.groups
    for k in range(30):
        out = swap("Michael called. Michael left.", lists, key=str(k))
        new = out.split()[0]
        assert new in female and out == f"{new} called. {new} left."
        back = swap(f"{female[0]} called", lists, key=str(k)).split()[0]
        assert back in male


def test_group_column_values_become_a_set_without_placeholders_or_codes():
    from auditft.default_plugins.audits.robustness.wordlists import group_column_sets

    (ethnicity,) = group_column_sets({"ethnicity": ["white", "black", "other", "Unknown", "white"],
                                      "age_band": ["18-39", "65+"], "site": ["north"]})
    assert ethnicity.groups == (("black",), ("white",))  # "no other symptoms" is not an identity
    lists = load_word_lists(None, {"ethnicity": ["white", "black", "other"]})
    assert swap("no other symptoms", lists) is None


def test_identity_swap_matches_whole_words_only_and_skips_rows_without_a_term(lists):
    assert swap("the shell theme", lists) is None  # "he" inside words is no pronoun
    assert swap("patient reports pain", lists) is None


def test_swap_back_restores_the_original_terms(lists):
    text = "Michael said he was fine"
    out, mapping = P.identity_replacements(text, rng(family="identity_swap"), lists=lists)
    assert out != text
    assert P.swap_back(out, mapping).lower() == text.lower()


def test_unknown_family_is_an_error(lists):
    with pytest.raises(ValueError, match="unknown perturbation family"):
        P.family("paraphrase", lists=lists, rate=0.1)


# -- word lists and options --------------------------------------------------------------------------------


def test_a_suite_word_list_replaces_a_shipped_list_key_by_key(tmp_path):
    path = tmp_path / "lists.json"
    path.write_text(json.dumps({"abbreviations": [["patient", "pt"]],
                                "identity": [{"name": "wards", "groups": [["north ward"], ["south ward"]]}]}))
    custom = load_word_lists(path)
    assert custom.abbreviations == (("patient", "pt"),) and len(custom.contractions) > 10
    assert [s.name for s in custom.identity] == ["wards"]
    assert custom.origin["abbreviations"].startswith("suite:") and custom.origin["contractions"] == "shipped"
    assert P.identity_swap("seen on north ward", random.Random(0), lists=custom) == "seen on south ward"
    assert P.word_edits("the patient", random.Random(0), lists=custom) == "the pt"


@pytest.mark.parametrize("content, match", [
    ({"abbreviation": []}, "unknown keys"),
    ({"abbreviations": [["only one"]]}, "two non-empty strings"),
    ({"identity": [{"groups": [["a"]]}]}, "at least two"),
])
def test_bad_word_lists_are_one_line_errors(tmp_path, content, match):
    path = tmp_path / "lists.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match):
        load_word_lists(path)
    with pytest.raises(ValueError, match="word_lists"):
        RobustnessOptions.model_validate({"word_lists": "lists.json"}, context={"suite_dir": str(tmp_path)})


@pytest.mark.parametrize("options, match", [
    ({"families": ["paraphrase"]}, "unknown families"),
    ({"families": ["char_noise", "char_noise"]}, "listed twice"),
    ({"families": []}, "at least 1"),
    ({"rate": 0}, "greater than 0"),
    ({"consistency_threshold": 2}, "less than or equal"),
    ({"familes": ["char_noise"]}, "Extra inputs"),
])
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):
        RobustnessOptions(**options)


def test_a_missing_word_list_is_reported_with_the_suite():
    with pytest.raises(ValueError, match="word_lists"):
        RobustnessOptions.model_validate({"word_lists": "/nonexistent/lists.json"})


# -- metric table and statistics --------------------------------------------------------------------------


def test_flip_rates_are_trivial_and_accuracy_under_perturbation_is_not():
    for fam in P.FAMILIES:
        assert f"flip_rate_{fam}" in TRIVIAL_METRICS and f"consistency_{fam}" in TRIVIAL_METRICS
        assert f"accuracy_drop_{fam}" in TRIVIAL_METRICS
        assert f"accuracy_{fam}" not in TRIVIAL_METRICS and f"accuracy_{fam}" in PROPORTIONS
        assert METRIC_DIRECTIONS[f"flip_rate_{fam}"] == "lower" and METRIC_DIRECTIONS[f"accuracy_{fam}"] == "higher"
    for name in ("flip_rate", "worst_flip_rate", "identity_flip_rate_max_group", "consistency"):
        assert name in TRIVIAL_METRICS


def test_group_flips_by_hand():
    groups = [{"sex": "female"}] * 4 + [{"sex": "male"}] * 6
    flips = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1], dtype=float)
    rows, metric = scoring.group_flips(groups, flips, np.zeros(10), ["sex"], min_group_size=3)
    by = {r["value"]: r for r in rows}
    assert by["female"]["flip_rate"] == 0.75 and by["male"]["flip_rate"] == pytest.approx(1 / 6)
    assert metric.value == 0.75 and metric.n == 4 and metric.details["group"] == "sex=female"
    assert metric.ci_low < 0.75 < metric.ci_high and metric.base_value == 0 and by["female"]["worst"]
    # a group under min_group_size is not the max group's choice
    _, metric = scoring.group_flips(groups, flips, np.zeros(10), ["sex"], min_group_size=5)
    assert metric.details["group"] == "sex=male"


def test_stratified_sample_keeps_label_shares_and_is_seeded():
    keys = [0] * 300 + [1] * 100
    got = scoring.stratified_sample(keys, 40, seed=3)
    assert len(got) == 40 and sum(keys[i] for i in got) == 10 and got == sorted(got)
    assert got == scoring.stratified_sample(keys, 40, seed=3) != scoring.stratified_sample(keys, 40, seed=4)
    assert scoring.stratified_sample(keys, 1000, seed=0) == list(range(400))


def test_worst_family_ignores_families_under_the_floor():
    from auditft.records import Metric

    metrics = {"flip_rate_char_noise": Metric(value=0.2, n=50), "flip_rate_word_edits": Metric(value=0.9, n=5),
               "flip_rate_identity_swap": Metric(value=0.4, n=30)}
    family, m = scoring.worst_metric(metrics, P.FAMILIES, "flip_rate", higher_worse=True, min_n=20)
    assert family == "identity_swap" and m.value == 0.4 and m.details["family"] == "identity_swap"


# -- the audit on fake sessions --------------------------------------------------------------------------


class PronounKeyed:
    """The adapter predicts urgent exactly when the text starts with "he"; the base model reads
    the rest of the row (its true label), whatever the pronoun."""

    def __init__(self, data):
        self.data = data
        self.truth = {ex.text.split(" ", 1)[1]: ex.label for split in ("train", "validation", "test")
                      for ex in getattr(data, split)}

    def _adapter(self, texts):
        urgent = np.array([t.split(" ", 1)[0].lower() == "he" for t in texts], dtype=float)
        return np.c_[1 - urgent, urgent] * 0.8 + 0.1

    def _base(self, texts):
        label = np.array([self.truth.get(t.split(" ", 1)[1], 0) for t in texts], dtype=float)
        return np.c_[1 - label, label] * 0.7 + 0.15

    def adapter_proba(self, split):
        return self._adapter([ex.text for ex in getattr(self.data, split)])

    def base_probe_proba(self, split):
        return self._base([ex.text for ex in getattr(self.data, split)])

    def proba_texts(self, texts, *, which="adapter"):
        return self._adapter(texts) if which == "adapter" else self._base(texts)


def pronoun_job(tmp_path, options=None):
    from auditft.conformance.fakes import fake_job

    opts = RobustnessOptions(**{"n_boot": 200, **(options or {})})
    holder = {}

    def factory(data, seed):
        for split in (data.train, data.validation, data.test):
            for ex in split:  # the pronoun of the label, as a shortcut the adapter took
                ex.text = f"{'he' if ex.label == 1 else 'she'} {ex.text}"
        holder["session"] = PronounKeyed(data)
        return holder["session"]

    return fake_job("classification", opts, tmp_path / "job", factory), opts


def test_a_pronoun_keyed_adapter_flips_on_every_identity_swap(tmp_path):
    job, opts = pronoun_job(tmp_path)
    result = RobustnessAudit(opts).run(job)
    m = result.metrics
    n = len(job.data.test)
    flip = m["flip_rate_identity_swap"]
    assert flip.value == 1.0 and flip.n == n and flip.base_value == 0.0
    assert flip.ci_low > 0.9 and flip.ci_high == 1.0
    assert m["flip_rate_identity_swap_delta"].value == 1.0
    acc = m["accuracy_identity_swap"]  # every prediction flipped away from the (right) pronoun
    assert acc.value == 0.0 and acc.base_value == 1.0 and m["accuracy_drop_identity_swap"].value == 1.0
    assert m["identity_flip_rate_max_group"].value == 1.0 and m["identity_flip_rate_max_group"].n > 0
    assert {g["column"] for g in result.evidence["identity_groups"]} >= {"sex", "band"}
    assert sum(g["n"] for g in result.evidence["identity_groups"] if g["column"] == "sex") == n
    # the other families do not touch the pronoun's first word often: fewer flips there
    assert m["flip_rate"].value < 1.0 and m["worst_flip_rate"].details["family"] == "identity_swap"
    examples = result.evidence["examples"]["identity_swap"]
    assert len(examples) == opts.max_examples and all(e["flipped"] and not e["base_flipped"] for e in examples)
    assert examples[0]["perturbed"].split()[0] in ("he", "she") != examples[0]["text"].split()[0]
    assert "identity swaps flip most" in result.evidence["summary"]
    for metric in m.values():
        assert metric.ci_low <= metric.value <= metric.ci_high
    json.dumps(result.to_dict())


def test_the_pronoun_keyed_adapter_fails_a_flip_rate_gate(tmp_path):
    from auditft import gate
    from auditft.suite import AuditSpec
    from auditft.testing import isolated_plugin_manager

    job, opts = pronoun_job(tmp_path)
    result = RobustnessAudit(opts).run(job)
    spec = AuditSpec(kind="robustness", gates=[{"metric": "flip_rate_identity_swap", "max": 0.2, "rationale": "t"}])
    (check,) = gate.decide_specs([spec], {"robustness": result}, isolated_plugin_manager().audits)
    assert check.status == "fail"


def test_families_and_max_rows_options_are_honoured(tmp_path):
    job, opts = pronoun_job(tmp_path, {"families": ["word_edits"], "max_rows": 20})
    result = RobustnessAudit(opts).run(job)
    assert "flip_rate_word_edits" in result.metrics and "flip_rate_char_noise" not in result.metrics
    assert result.evidence["n_rows"] == 20 and any("20 of" in n for n in result.notes)


def test_a_family_that_changes_no_row_is_insufficient(tmp_path):
    from auditft.conformance.fakes import FakeModelSession, fake_job

    opts = RobustnessOptions(families=["identity_swap"], n_boot=200)
    job = fake_job("classification", opts, tmp_path / "job", lambda data, seed: FakeModelSession(data, seed))
    result = RobustnessAudit(opts).run(job)
    assert result.metrics["flip_rate_identity_swap"].n == 0 and "flip_rate" not in result.metrics
    assert any("No test row could be perturbed by identity_swap" in n for n in result.notes)


@pytest.mark.parametrize("task", ["classification", "generation"])
def test_robustness_passes_the_kit(task):
    from auditft.testing import check_audit

    result = check_audit(importlib.import_module("auditft.default_plugins.audits.robustness"), "robustness",
                         task=task)
    headline = "flip_rate" if task == "classification" else "consistency"
    assert result.metrics[headline].n > 0 and result.metrics[headline].base_value is not None
    assert result.evidence["summary"]


def test_report_section_shows_the_families_groups_and_examples_escaped(tmp_path):
    from auditft.default_plugins.audits.robustness import auditft_report_sections

    job, opts = pronoun_job(tmp_path)
    result = RobustnessAudit(opts).run(job)
    result.evidence["examples"]["identity_swap"][0]["text"] = "<script>alert(1)</script>"
    (section,) = auditft_report_sections({"audits": {"robustness": result.to_dict()}})
    assert section.anchor == "audit-robustness" and "<svg" in section.html
    for text in ("identity_swap", "char_noise", "Identity swaps by group", "Worst examples", "max group"):
        assert text in section.html
    assert "<script>" not in section.html and "&lt;script&gt;" in section.html
    assert auditft_report_sections({"audits": {}}) == []


# -- end to end on the tiny classifier --------------------------------------------------------------------


def _tiny_run(tmp_path, learning_rate):
    from auditft.run import execute, prepare
    from auditft.testing import isolated_plugin_manager, tiny_classifier, toy_classification_data, write_suite

    tiny_classifier(tmp_path / "model")
    toy_classification_data(tmp_path, n_train=240, n_test=60)
    for name in ("train.jsonl", "test.jsonl"):  # a pronoun and a number in every row: each family applies
        path = tmp_path / name
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**r, "text": f"{('he', 'she')[i % 2]} {r['text']} 3"}) + "\n"
                                for i, r in enumerate(rows)))
    suite = write_suite(
        tmp_path / "s.yaml", model_dir=tmp_path / "model",
        tuner={"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0},
               "training": {"epochs": 4 if learning_rate else 1, "learning_rate": learning_rate, "batch_size": 8,
                            "max_length": 32, "eval_batch_size": 64, "logging_steps": 5}},
        audits=[{"kind": "robustness", "options": {"n_boot": 200},
                 "gates": [{"metric": "flip_rate", "max": 0.5, "rationale": "toy"}]}])
    pm = isolated_plugin_manager()
    report = execute(prepare(suite, pm), pm, reports=tmp_path / "reports", author="tester")
    run_dir = next(d for d in (tmp_path / "reports").iterdir() if d.is_dir())
    return report, run_dir


def test_end_to_end_on_the_tiny_classifier(tmp_path):
    report, run_dir = _tiny_run(tmp_path, 0.02)
    audit = json.loads((run_dir / "report.json").read_text())["audits"]["robustness"]
    assert audit["error"] is None, audit["error"]
    metrics, ev = audit["metrics"], audit["evidence"]
    for fam in P.FAMILIES:
        for name in (f"flip_rate_{fam}", f"accuracy_{fam}", f"accuracy_drop_{fam}"):
            m = metrics[name]
            assert m["n"] == 60 and m["base_value"] is not None, name
            assert m["ci_low"] <= m["value"] <= m["ci_high"], (name, m)
            if not name.startswith("accuracy_drop"):  # a share's exact interval is never zero-width
                assert m["ci_high"] > m["ci_low"], (name, m)
            assert f"{name}_delta" in metrics, name
        assert ev["per_family"][fam]["n"] == 60
        flips = ev["per_family"][fam]["flips"]
        assert metrics[f"flip_rate_{fam}"]["value"] == pytest.approx(flips / 60)
    assert metrics["accuracy_char_noise"]["value"] > 0.6 and metrics["accuracy_char_noise"]["base_value"] > 0.6
    assert metrics["flip_rate"]["n"] == 180 and metrics["identity_flip_rate_max_group"]["n"] > 0
    assert [(c["metric"], c["status"]) for c in report["checks"]] == [("flip_rate", "pass"),
                                                                       ("model_not_degenerate", "pass")]
    html = (run_dir / "report.html").read_text()
    assert 'id="audit-robustness"' in html and "Robustness" in html and "identity_swap" in html
    assert ev["summary"] in (run_dir / "model_card.md").read_text()


def test_a_constant_tiny_classifier_never_flips_and_is_still_blocked(tmp_path):
    """Learning rate ~0: the head stays where it started, one class for every row. It flips on no
    perturbation, so the flip-rate gate alone would pass it; flip rates are declared trivial, so
    core's degeneracy check fails the gate."""
    report, run_dir = _tiny_run(tmp_path, 1e-9)
    metrics = json.loads((run_dir / "report.json").read_text())["audits"]["robustness"]["metrics"]
    assert metrics["flip_rate"]["value"] == 0.0
    checks = {c["metric"]: c for c in report["checks"]}
    assert checks["model_not_degenerate"]["status"] == "fail" and checks["flip_rate"]["status"] == "fail"
    assert report["verdict"] == "blocked"


def test_a_bad_word_list_file_is_a_one_line_suite_error(tmp_path):
    from auditft.suite import SuiteError, load_suite
    from auditft.testing import isolated_plugin_manager, toy_classification_data, write_suite

    toy_classification_data(tmp_path, n_train=40, n_test=20)
    (tmp_path / "lists.json").write_text(json.dumps({"identity": [{"groups": [["north ward"]]}]}))
    suite = write_suite(tmp_path / "s.yaml", model_dir=tmp_path / "model",
                        audits=[{"kind": "robustness", "options": {"word_lists": "lists.json"}}])
    with pytest.raises(SuiteError) as err:
        load_suite(suite, isolated_plugin_manager())
    message = str(err.value)
    assert "\n" not in message and "word_lists" in message and "at least two" in message
