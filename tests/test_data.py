"""Data loading: row-level errors with row numbers, integer labels, stratified seeded splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditft.data import load_data, read_rows
from auditft.errors import DataError
from auditft.suite import load_suite


def _rows(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"text": "", "label": "urgent", "sex": "f", "band": "y"}, "row 3: empty or non-text value in column 'text'"),
        ({"label": "urgent", "sex": "f", "band": "y"}, "row 3: missing column 'text' (data.text_column)"),
        ({"text": "x", "label": "maybe", "sex": "f", "band": "y"}, "row 3: label 'maybe' is not one of data.labels"),
        ({"text": "x", "label": "urgent", "band": "y"}, "row 3: missing group column 'sex' (data.group_columns)"),
        ({"text": "x", "label": None, "sex": "f", "band": "y"}, "row 3: empty label in column 'label'"),
        ('{"text": "x", "label": ', "row 3: invalid JSON"),
        ('["a", "b"]', "row 3: expected a JSON object"),
    ],
)
def test_bad_row_is_named(toy, pm, row, expected):
    directory, suite_path = toy
    train = directory / "train.jsonl"
    lines = train.read_text().splitlines()
    lines[2] = row if isinstance(row, str) else json.dumps(row)
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_data(load_suite(suite_path, pm))
    assert str(info.value) == f"{train}: {expected}" or str(info.value).startswith(f"{train}: {expected}")


def test_non_utf8_is_named(toy, pm):
    directory, suite_path = toy
    train = directory / "train.jsonl"
    train.write_bytes(train.read_bytes() + b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"train.jsonl: row 241: not valid UTF-8"):
        load_data(load_suite(suite_path, pm))


def test_split_is_stratified_seeded_and_hashes_recorded(toy, pm):
    _, suite_path = toy
    suite = load_suite(suite_path, pm)
    a, b = load_data(suite), load_data(suite)
    assert [e.text for e in a.validation] == [e.text for e in b.validation]
    assert a.counts() == {"train": 216, "validation": 24, "test": 120}
    share = sum(e.label for e in a.validation) / len(a.validation)
    overall = sum(e.label for e in a.train + a.validation) / 240
    assert abs(share - overall) < 0.05
    assert [f.role for f in a.files] == ["train", "test"] and all(len(f.sha256) == 64 for f in a.files)
    assert a.files[0].rows == 240


def test_test_split_off_train_when_absent(toy, pm):
    directory, suite_path = toy
    import yaml

    data = yaml.safe_load(suite_path.read_text())
    del data["data"]["test"]
    suite_path.write_text(yaml.safe_dump(data))
    split = load_data(load_suite(suite_path, pm))
    assert split.counts() == {"train": 173, "validation": 19, "test": 48}


def test_single_class_training_set_is_rejected(toy, pm):
    directory, suite_path = toy
    train = directory / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    _rows(train, [{**r, "label": "urgent"} for r in rows])
    with pytest.raises(DataError, match="single class"):
        load_data(load_suite(suite_path, pm))


def test_integer_labels_index_into_labels_and_csv_works(tmp_path):
    import csv

    path = tmp_path / "d.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerow({"text": "a", "label": "1"})
    assert read_rows(path) == [{"text": "a", "label": "1"}]
    with pytest.raises(DataError, match="unsupported data format '.txt'"):
        read_rows(tmp_path / "x.txt")
