"""The ``data`` audit: planted defects must be found, clean controls must stay clean.

Most tests call ``auditft.data_checks`` directly on synthetic inputs (instant); one runs the
plugin end to end on the tiny random model with every defect planted in the train file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from auditft.default_plugins.audits.data import checks as dc
from auditft.conformance import FailingModelSession, FakeModelSession, check_audit_result, check_sections
from auditft.data import load_data
from auditft.jobs import AuditJob
from auditft.isolation import run_audit as _run_audit
from auditft.suite import load_suite
from auditft.testing import toy_classification_data, toy_generation_data, write_suite

PLUGIN = "auditft.default_plugins.audits.data"
HOSTILE = "<script>alert(1)</script>"

# -- label issues -------------------------------------------------------------------------------------


def planted_labels(n: int = 1000, k: int = 3, dim: int = 16, sep: float = 1.5, rate: float = 0.05,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, set[int]]:
    """Gaussian clusters (a learnable label: about 96% linear accuracy at ``sep=1.5``), then
    ``rate`` of the labels flipped to another class. Returns features, true labels, given labels
    and the flipped positions."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim))
    centers *= sep / np.linalg.norm(centers, axis=1, keepdims=True)
    y = rng.integers(0, k, n)
    x = centers[y] + rng.normal(scale=0.5, size=(n, dim))
    flipped = rng.choice(n, int(rate * n), replace=False)
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, k, len(flipped))) % k
    return x, y, given, set(flipped.tolist())


def test_flipped_labels_are_found_with_measured_precision_and_recall():
    x, y, given, flipped = planted_labels()
    found = dc.label_issues(x, given, folds=5, seed=0)
    flagged = set(found.indices)
    hits = len(flagged & flipped)
    precision, recall = hits / len(flagged), hits / len(flipped)
    print(f"label issues on the planted set: {len(flagged)} flagged, precision {precision:.3f}, "
          f"recall {recall:.3f}, out-of-fold accuracy {found.cv_accuracy:.3f}")
    assert recall >= 0.6 and precision >= 0.5
    # the suggested label of a found flip is its true label
    suggested = [s == y[i] for i, s in zip(found.indices, found.suggested) if i in flipped]
    assert np.mean(suggested) >= 0.9
    # ranked worst first: the quality (probability of the given label) never decreases
    assert found.quality == sorted(found.quality)
    assert all(0 <= q <= 1 for q in found.quality)


def test_clean_labels_flag_few_rows():
    x, y, _, _ = planted_labels()
    assert len(dc.label_issues(x, y, seed=0).indices) <= 0.02 * len(y)


def test_label_issues_are_seeded_and_survive_absent_and_small_classes():
    x, _, given, _ = planted_labels(n=300, k=2, rate=0.05)
    assert dc.label_issues(x, given, seed=3).indices == dc.label_issues(x, given, seed=3).indices
    # labels 0 and 5 (a declared label 1..4 with no rows): suggestions stay in the given label space
    sparse_labels = np.where(given == 1, 5, given)
    found = dc.label_issues(x, sparse_labels, seed=0)
    assert set(found.suggested) <= {0, 5}
    # a class with 3 rows: fewer folds instead of a crash
    few = given.copy()
    few[:3] = 2
    assert dc.label_issues(x, few, folds=5, seed=0).folds == 3
    with pytest.raises(ValueError, match="label 1 has 1"):
        dc.label_issues(x, np.r_[np.zeros(len(x) - 1, int), [1]], seed=0)


def test_tfidf_features_find_a_planted_keyword_flip():
    rng = random.Random(0)
    words = {0: ["mild", "stable", "routine", "refill"], 1: ["severe", "sudden", "crushing", "collapse"]}
    filler = ["patient", "reports", "pain", "since", "today", "noted", "at", "home", "visit", "for"]
    texts, labels = [], []
    for _ in range(300):
        label = rng.randrange(2)
        texts.append(" ".join(rng.sample(filler, 5) + rng.sample(words[label], 2)))
        labels.append(label)
    flipped = set(rng.sample(range(300), 15))
    given = [1 - lab if i in flipped else lab for i, lab in enumerate(labels)]
    found = set(dc.label_issues(dc.text_features(texts), given, seed=0).indices)
    assert len(found & flipped) >= 12 and len(found - flipped) <= 5


# -- duplicates and leakage -------------------------------------------------------------------------

VOCAB = [f"w{i}" for i in range(400)]


def random_texts(n: int, seed: int, length: int = 18) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(VOCAB, length)) for _ in range(n)]


def test_normalise_folds_case_unicode_punctuation_and_space():
    assert dc.normalise("Ｆever,  NO\tcough!") == dc.normalise("fever no cough") == "fever no cough"
    assert dc.normalise("Ｃａｆé") == "café"


def test_test_rows_copied_into_train_are_found_and_a_clean_control_is_not():
    train, test = random_texts(200, seed=1), random_texts(50, seed=2)
    clean = dc.find_duplicates(train, test)
    assert clean.cross_pairs == [] and clean.leaked_test == [] and clean.train_pairs == [] and clean.redundant == []

    words = test[7].split()
    words[5] = "changed"
    planted = train + [test[3].upper() + " !", " ".join(words)]  # an exact (normalised) and a near copy
    found = dc.find_duplicates(planted, test)
    assert found.leaked_test == [3, 7]
    assert found.leaking_train == [200, 201]
    kinds = {(p.a, p.b): p.kind for p in found.cross_pairs}
    assert kinds == {(200, 3): "exact", (201, 7): "near"}
    assert found.redundant == []  # copies of test rows are not duplicates within train


def test_near_duplicate_pairs_are_confirmed_by_exact_jaccard():
    base = random_texts(60, seed=3)
    rng = random.Random(4)
    variants = []
    for text in base[:30]:  # 0-4 words changed: some above the threshold, some below
        words = text.split()
        for j in rng.sample(range(len(words)), rng.randrange(5)):
            words[j] = f"x{rng.randrange(10_000)}"
        variants.append(" ".join(words))
    found = dc.find_duplicates(base + variants, threshold=0.8)
    sets = [dc.shingles(t) for t in base + variants]
    for p in found.train_pairs:
        assert p.similarity == pytest.approx(dc.jaccard(sets[p.a], sets[p.b]))
        assert p.similarity >= 0.8
    expected = {(i, 60 + i) for i in range(30) if dc.jaccard(sets[i], sets[60 + i]) >= 0.8}
    assert expected and expected <= {(p.a, p.b) for p in found.train_pairs}


def test_exact_duplicates_within_train_keep_the_first_copy():
    texts = random_texts(20, seed=5)
    texts += [texts[2], texts[2].upper(), texts[9]]
    found = dc.find_duplicates(texts)
    assert found.redundant == [20, 21, 22]
    assert {(p.a, p.b) for p in found.train_pairs if p.kind == "exact"} == {(2, 20), (2, 21), (9, 22)}


# -- representation -------------------------------------------------------------------------------


def test_a_group_with_three_rows_is_flagged():
    rng = random.Random(0)
    groups = [{"sex": rng.choice(["female", "male"]), "band": rng.choice(["young", "old"])} for _ in range(200)]
    groups += [{"sex": "intersex", "band": "old"}] * 3
    labels = [i % 2 for i in range(203)]
    rep = dc.representation(groups, ["sex", "band"], 30, labels, ["routine", "urgent"])
    small = {g.label: g.count for g in rep["columns"] + rep["intersections"] if g.small}
    assert small == {"sex=intersex": 3, "sex=intersex & band=old": 3}
    assert min(g.count for g in rep["columns"]) == 3
    assert rep["absent"] == ["sex=intersex & band=young"]
    assert sum(rep["columns"][0].labels.values()) == rep["columns"][0].count
    assert rep["overall_labels"] == {"routine": 102, "urgent": 101}


# -- personal data ----------------------------------------------------------------------------------

CLEAN_NOTES = [
    "pt is 58 c/o feeling feverish started last night; sats 98% RA, BP 119/71, temp 37.3",
    "seen on 2024-03-05 and 05/03/2024 at 0930; pain 7/10; HR 128; ref 12345",
    "order 4111 1111 1111 1112 was a typo",  # Luhn-invalid: not a card
    "ids 000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",  # never-issued SSN ranges
    "BG123456A DA123456A",  # not allocated NINO prefixes
]


@pytest.mark.parametrize("text", CLEAN_NOTES)
def test_no_personal_data_in_clean_or_invalid_text(text):
    assert dc.detect_pii(text) == []


@pytest.mark.parametrize(("text", "kind", "masked"), [
    ("write to jane.doe@example.com today", "email", "j***@e***.com"),
    ("card 4111 1111 1111 1111 on file", "credit_card", "**** **** **** 1111"),
    ("card 5500-0000-0000-0004", "credit_card", "****-****-****-0004"),
    ("amex 378282246310005", "credit_card", "***********0005"),
    ("ssn 123-45-6789", "ssn", "***-**-**89"),
    ("NI number AB 12 34 56 C", "nino", "** ** ** *6 C"),
    ("call +44 20 7946 0958", "phone", "+** ** **** **58"),
    ("call (202) 555-0143", "phone", "(***) ***-**43"),
    ("call 202.555.0143", "phone", "***.***.**43"),
    ("mobile 07700 900123", "phone", "***** ****23"),
    ("tel 01 23 45 67 89", "phone", "** ** ** ** 89"),
])
def test_personal_data_is_found_and_masked(text, kind, masked):
    found = dc.detect_pii(text)
    assert [(f.type, f.masked) for f in found] == [(kind, masked)]
    assert found[0].text not in dc.mask_pii(text)


def test_luhn_checksum():
    assert dc.luhn_valid("4111111111111111") and dc.luhn_valid("4012 8888 8888 1881")
    assert not dc.luhn_valid("4111111111111112") and not dc.luhn_valid("1234")


def test_scan_counts_rows_and_keeps_only_masked_examples():
    texts = ["nothing here", "mail a.b@example.org and c@d.io", "card 4111111111111111 and 4111111111111112",
             "clean again", "ssn 078-05-1120"]
    scan = dc.scan_pii(texts)
    assert scan.rows == [1, 2, 4]
    assert scan.counts == {"email": 2, "phone": 0, "credit_card": 1, "ssn": 1, "nino": 0}
    assert scan.rows_by_type["email"] == [1]
    shown = json.dumps(scan.examples)
    for raw in ("a.b@example.org", "c@d.io", "4111111111111111", "078-05-1120"):
        assert raw not in shown


def test_token_lengths_count_truncated_rows():
    stats = dc.token_lengths(["a b", "a b c d e", "a b c d e f g"], lambda batch: [len(t.split()) for t in batch], 4)
    summary = stats.summary()
    assert stats.truncated == [1, 2]
    assert summary["truncated"] == 2 and summary["mean_tokens_cut"] == 2.0 and summary["max_tokens_cut"] == 3


# -- the plugin -------------------------------------------------------------------------------------


def test_registered_as_a_data_stage_audit(pm):
    entry = pm.audits.get("data")
    assert entry.stage == "data" and entry.plugin == PLUGIN
    assert {"label_issue_rate", "train_test_overlap_rate", "min_group_count", "pii_row_rate"} <= set(entry.metrics)
    assert entry.metrics["min_group_count"] == "higher" and entry.metrics["pii_row_rate"] == "lower"
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        entry.options(unknown=1)
    with pytest.raises(ValidationError):
        entry.options(pii_types=["passport"])


def _plant(directory: Path) -> dict[str, list[int]]:
    """Toy train/test files with defects planted in the train file; returns the expected rows."""
    toy_classification_data(directory, n_train=240, n_test=60, seed=1)
    train = [json.loads(line) for line in (directory / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (directory / "test.jsonl").read_text().splitlines()]
    flipped = list(range(0, 240, 20))  # 12 rows, 5%
    for i in flipped:
        train[i]["label"] = "routine" if train[i]["label"] == "urgent" else "urgent"
    for i in flipped[:3]:  # hostile markup in suspects' text: the report must escape it
        train[i]["text"] += " " + HOSTILE
    pii = {5: " mail jane.doe@example.com", 6: " card 4111 1111 1111 1111", 7: " card 4111 1111 1111 1112",
           8: " ssn 666-12-3456"}
    for i, extra in pii.items():
        train[i]["text"] += extra
    test[9]["text"] += " w1 w2 w3 w4 w5 w6 w7"  # long enough for one changed word to stay near
    copies = [dict(test[4]), dict(test[9])]
    copies[1]["text"] = copies[1]["text"].replace(" w4 ", " changed ")  # near copy: one word changed
    assert 0.8 <= dc.jaccard(dc.shingles(test[9]["text"]), dc.shingles(copies[1]["text"])) < 1
    train += copies
    small = [{**train[j], "sex": "intersex"} for j in (11, 12, 13)]  # a group of 3 (copies of rows 11-13)
    train += small
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        (directory / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"flipped": flipped, "pii": [5, 6], "overlap": [240, 241], "duplicates": [242, 243, 244]}


def _job(directory: Path, session_factory, options=None, export_dir=None, task="classification"):
    from auditft.testing import isolated_plugin_manager

    entry = isolated_plugin_manager().audits.get("data")
    suite = load_suite(directory / "suite.yaml")
    data = load_data(suite, tolerate_overlap=True)  # the data audit measures overlap itself
    work = directory / "work"
    work.mkdir(exist_ok=True)
    job = AuditJob(suite=suite, task=task, data=data, options=entry.options(**(options or {})), seed=suite.seed,
                   models=session_factory(suite, data), work_dir=work,
                   extra={"export_dir": export_dir} if export_dir else {})
    return entry, job


def test_end_to_end_on_the_tiny_model_finds_every_planted_defect(tmp_path, tiny_model_dir):
    from auditft.inference import ModelSession
    from auditft.models import resolve_model

    expected = _plant(tmp_path)
    write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, audits=[{"kind": "data"}])

    def session(suite, data):
        return ModelSession(tuner=None, base=resolve_model(str(tiny_model_dir)), data=data, adapter_dir=None,
                            max_length=suite.tuner.training.max_length, batch_size=64, seed=suite.seed)

    export_dir = tmp_path / "run" / "data-audit"
    entry, job = _job(tmp_path, session, {"max_examples": 50}, export_dir=export_dir)
    result = _run_audit(entry, job)
    check_audit_result(result, entry, entry.plugin)
    m, ev = result.metrics, result.evidence

    flagged = set(result.rows["label_issue_rows"])
    hits = len(flagged & set(expected["flipped"]))
    print(f"end to end on the tiny model: {len(flagged)} flagged, {hits} of {len(expected['flipped'])} flips found")
    assert hits >= 0.6 * len(expected["flipped"]) and hits >= 0.5 * len(flagged), (sorted(flagged), expected)
    assert m["label_issue_rate"].value == pytest.approx(len(flagged) / 245) and m["label_issue_rate"].n == 245

    assert result.rows["overlap_rows"] == expected["overlap"]  # train-file rows, not split positions
    assert m["train_test_overlap_rate"].value == pytest.approx(2 / 60) and m["train_test_overlap_rate"].n == 60
    assert ev["duplicates"]["leaked_exact"] == 1 and ev["duplicates"]["leaked_near_only"] == 1

    assert m["min_group_count"].value == 3
    assert result.rows["duplicate_rows"] == expected["duplicates"]
    assert {"label": "sex=intersex", "count": 3} in ev["groups"]["small"]

    assert result.rows["pii_rows"] == expected["pii"]  # the Luhn-invalid card and SSN 666 are not counted
    assert m["pii_row_rate"].value == pytest.approx(2 / 245)
    assert ev["pii"]["counts"]["email"] == 1 and ev["pii"]["counts"]["credit_card"] == 1
    assert ev["pii"]["counts"]["ssn"] == 0
    # only the 3 rows with appended markup outgrow max_length (32) with the tiny tokenizer
    assert m["truncated_rate"].value == pytest.approx(3 / 245) and ev["lengths"]["max_length"] == 32
    assert {r["row"] for r in ev["lengths"]["longest"][:3]} == set(expected["flipped"][:3])
    assert ev["lengths"]["max_tokens_cut"] >= ev["lengths"]["mean_tokens_cut"] > 0

    # raw personal data never reaches report.json; the report section escapes row text
    encoded = json.dumps(result.to_dict())
    assert "jane.doe@example.com" not in encoded and "4111 1111 1111 1111" not in encoded
    assert "j***@e***.com" in encoded
    from auditft.testing import isolated_plugin_manager

    report = {"audits": {"data": result.to_dict()}}
    [section] = check_sections(isolated_plugin_manager(), entry.plugin, report)
    assert any(HOSTILE in s["text"] for s in ev["label_issues"]["suspects"])
    assert "<script>" not in section.html and "&lt;script&gt;" in section.html
    assert section.order < 20 and "jane.doe@example.com" not in section.html

    # exports: the cleaned train file drops label-issue and overlap rows, in file order
    removed = json.loads("[" + ",".join((export_dir / "removed_rows.jsonl").read_text().splitlines()) + "]")
    assert [r["row"] for r in removed] == sorted(flagged | set(expected["overlap"]))
    assert all(r["suggested_label"] in ("routine", "urgent") for r in removed if "label_issue" in r["reasons"])
    cleaned = (export_dir / "train.cleaned.jsonl").read_text().splitlines()
    assert len(cleaned) == 245 - len(removed)
    assert not (export_dir / "train.masked.jsonl").exists()  # export_masked is off by default


def test_masked_export_and_no_export_without_a_directory(tmp_path):
    _plant(tmp_path)
    write_suite(tmp_path / "suite.yaml", model_dir="model", audits=[{"kind": "data"}])
    fake = lambda suite, data: FakeModelSession(data, suite.seed)  # noqa: E731
    entry, job = _job(tmp_path, fake, {"export_masked": True}, export_dir=tmp_path / "out")
    result = _run_audit(entry, job)
    check_audit_result(result, entry, entry.plugin)
    masked = (tmp_path / "out" / "train.masked.jsonl").read_text()
    assert "jane.doe@example.com" not in masked and "j***@e***.com" in masked
    assert "4111 1111 1111 1112" in masked  # not a card number, so not masked
    assert len(masked.splitlines()) == 245

    entry, job = _job(tmp_path, fake)
    result = _run_audit(entry, job)
    assert result.error is None and result.evidence["exports"] == []
    assert any("no export directory" in note for note in result.notes)
    assert any("no base model" in note for note in result.notes)  # the stand-in session has no tokenizer


def test_a_failing_model_is_an_error_result(tmp_path):
    toy_classification_data(tmp_path, n_train=80, n_test=40)
    write_suite(tmp_path / "suite.yaml", model_dir="model", audits=[{"kind": "data"}])
    entry, job = _job(tmp_path, lambda suite, data: FailingModelSession(), options={"features": "embeddings"})
    result = _run_audit(entry, job)
    assert result.error and PLUGIN in result.error


def test_generation_skips_label_issues_and_dedups_prompt_and_response(tmp_path):
    toy_generation_data(tmp_path, copies=3)
    data = {"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7,
            "group_columns": ["group"]}
    write_suite(tmp_path / "suite.yaml", model_dir="model", task="generation", data=data, audits=[{"kind": "data"}])
    entry, job = _job(tmp_path, lambda suite, data: FakeModelSession(data, suite.seed), task="generation")
    result = _run_audit(entry, job)
    check_audit_result(result, entry, entry.plugin)
    assert "label_issue_rate" not in result.metrics and "label_issue_rows" not in result.rows
    assert any("generation task has no class labels" in note for note in result.notes)
    # every question appears 3 times in train and every test pair is a training pair
    assert result.metrics["duplicate_rate"].value == pytest.approx(2 / 3)
    assert result.metrics["train_test_overlap_rate"].value == 1.0


def test_without_group_columns_only_label_balance_is_measured(tmp_path):
    toy_classification_data(tmp_path, n_train=80, n_test=40)
    data = {"train": "train.jsonl", "test": "test.jsonl", "labels": ["routine", "urgent", "unused"],
            "validation_fraction": 0.1, "seed": 7}
    write_suite(tmp_path / "suite.yaml", model_dir="model", data=data, audits=[{"kind": "data"}])
    entry, job = _job(tmp_path, lambda suite, data: FakeModelSession(data, suite.seed))
    result = _run_audit(entry, job)
    check_audit_result(result, entry, entry.plugin)
    assert "min_group_count" not in result.metrics and result.evidence["groups"]["columns"] == []
    assert result.metrics["min_label_share"].value == 0.0  # a declared label without rows
    assert any("no data.group_columns" in note for note in result.notes)
