"""Datasets: read jsonl/csv/parquet, check every row, split train/validation/test.

Rows are checked before anything is created on disk, so a bad row is a one-line error that
names the file and the 1-based row number (for jsonl, the line number). Splits are seeded and
stratified by label for classification. ``datasets.Dataset`` objects are built from the
checked rows by the tuners (``as_hf_dataset``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import DataError
from auditft.manifest import sha256_file

if TYPE_CHECKING:
    from auditft.suite import Suite

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class DataFile:
    """One input file as the manifest records it."""

    role: str
    path: Path
    sha256: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": str(self.path), "sha256": self.sha256, "rows": self.rows}


@dataclass
class Example:
    """One checked row. ``row`` is its 0-based index in its source file."""

    text: str
    label: int | None
    groups: dict[str, str]
    source: str
    row: int
    response: str | None = None
    #: the row's ``data.cluster_column`` value (rows sharing it are correlated), else None
    cluster: str | None = None


@dataclass
class SplitData:
    task: str
    labels: list[str]
    group_columns: list[str]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    files: list[DataFile] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read a data file into a list of row dicts; errors name the file and row."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported data format {path.suffix!r} (use .jsonl, .csv or .parquet)")
    if path.is_dir():
        raise DataError(f"{path}: cannot read: it is a directory, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        if kind == "jsonl":
            return _read_jsonl(path)
        if kind == "csv":
            with open(path, encoding="utf-8", newline="") as handle:
                return [dict(row) for row in csv.DictReader(handle)]
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte offset {exc.start})") from None
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read: {' '.join(str(exc).split())}") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: row {number}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: row {number}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: row {number}: expected a JSON object")
            rows.append(row)
    return rows


def load_data(suite: Suite, *, tolerate_overlap: bool = False) -> SplitData:
    """Read, check and split the suite's data.

    Exact train/test duplicates (same normalised text) are an input error, unless
    ``tolerate_overlap``: then a data-stage audit in the suite measures and gates them."""
    spec = suite.data
    train_path = suite.resolve(spec.train)
    train_rows = read_rows(train_path)
    files = [DataFile("train", train_path, sha256_file(train_path), len(train_rows))]
    test_rows: list[dict[str, Any]] | None = None
    test_path = None
    if spec.test:
        test_path = suite.resolve(spec.test)
        test_rows = read_rows(test_path)
        files.append(DataFile("test", test_path, sha256_file(test_path), len(test_rows)))

    labels = _label_set(suite, train_rows, train_path)
    train = _check_rows(suite, train_rows, train_path, labels)
    if not train:
        raise DataError(f"{train_path}: no rows")
    if test_rows is not None and test_path is not None:
        test = _check_rows(suite, test_rows, test_path, labels)
        if not test:
            raise DataError(f"{test_path}: no rows")
    else:
        train, test = _split(train, spec.test_fraction, spec.seed, suite.task, train_path, "test")
    if suite.task == "classification":
        present = {int(ex.label) for ex in train if ex.label is not None}  # classification rows have labels
        if len(present) < 2:
            raise DataError(f"{train_path}: training data has a single class ({labels[next(iter(present))]!r}); "
                            "classification needs at least two")
    _check_singleton_groups(suite, train + test, {train_path.name: train_path, **({test_path.name: test_path} if test_path else {})})
    if not tolerate_overlap:
        _check_overlap(train, test, train_path, test_path or train_path)
    validation: list[Example] = []
    if spec.validation_fraction > 0:
        train, validation = _split(train, spec.validation_fraction, spec.seed, suite.task, train_path, "validation")
    return SplitData(suite.task, labels, list(spec.group_columns), train, validation, test, files)


def _label_set(suite: Suite, rows: list[dict[str, Any]], path: Path) -> list[str]:
    if suite.task != "classification":
        return []
    if suite.data.labels:
        return list(suite.data.labels)
    column = suite.data.label_column
    seen: list[str] = []
    for number, row in enumerate(rows, start=1):
        if column not in row:
            raise DataError(f"{path}: row {number}: missing column {column!r} (data.label_column)")
        value = row[column]
        if _blank(value):
            raise DataError(f"{path}: row {number}: empty label in column {column!r}")
        text = _label_text(value)
        if text not in seen:
            seen.append(text)
    return sorted(seen)


def _check_rows(suite: Suite, rows: list[dict[str, Any]], path: Path, labels: list[str]) -> list[Example]:
    spec = suite.data
    classification = suite.task == "classification"
    text_col = spec.text_column if classification else spec.prompt_column
    text_key = "data.text_column" if classification else "data.prompt_column"
    index = {name: i for i, name in enumerate(labels)}
    max_chars = spec.max_chars or 50 * suite.tuner.training.max_length
    out = []
    for i, row in enumerate(rows):
        where = f"{path}: row {i + 1}"
        text = _required_text(row, text_col, text_key, where)
        if len(text) > max_chars:
            raise DataError(f"{where}: column {text_col!r} holds {len(text):,} characters, far over "
                            f"tuner.training.max_length ({suite.tuner.training.max_length} tokens); a malformed "
                            f"row? Set data.max_chars above {max_chars:,} if such texts are intended")
        label = None
        response = None
        if classification:
            if spec.label_column not in row:
                raise DataError(f"{where}: missing column {spec.label_column!r} (data.label_column)")
            value = row[spec.label_column]
            if _blank(value):
                raise DataError(f"{where}: empty label in column {spec.label_column!r}")
            if isinstance(value, int) and not isinstance(value, bool) and spec.labels and _label_text(value) not in index:
                # integer labels index into an explicit ``labels`` list
                if not 0 <= value < len(labels):
                    raise DataError(f"{where}: label index {value} outside data.labels (0..{len(labels) - 1})")
                label = value
            else:
                name = _label_text(value)
                if name not in index:
                    raise DataError(f"{where}: label {name!r} is not one of data.labels {labels}")
                label = index[name]
        else:
            response = _required_text(row, spec.response_column, "data.response_column", where)
        groups = {}
        for column in spec.group_columns:
            if column not in row:
                raise DataError(f"{where}: missing group column {column!r} (data.group_columns)")
            value = row[column]
            groups[column] = "(missing)" if _blank(value) else str(value)
        cluster = None
        if spec.cluster_column:
            if spec.cluster_column not in row:
                raise DataError(f"{where}: missing cluster column {spec.cluster_column!r} (data.cluster_column)")
            if _blank(row[spec.cluster_column]) or isinstance(row[spec.cluster_column], (dict, list)):
                raise DataError(f"{where}: cluster column {spec.cluster_column!r} (data.cluster_column) needs a "
                                f"non-empty scalar id, got {row[spec.cluster_column]!r}")
            cluster = str(row[spec.cluster_column])
        out.append(Example(text, label, groups, path.name, i, response, cluster))
    return out


def _check_singleton_groups(suite: Suite, rows: list[Example], paths: dict[str, Path]) -> None:
    """A group value held by one row cannot be audited and is nearly always a typo."""
    for column in suite.data.group_columns:
        seen: dict[str, list[Example]] = {}
        for ex in rows:
            seen.setdefault(ex.groups[column], []).append(ex)
        for value, members in seen.items():
            if len(members) == 1 and len(seen) > 1:
                ex = members[0]
                raise DataError(f"{paths.get(ex.source, ex.source)}: row {ex.row + 1}: group column {column!r} value "
                                f"{value!r} occurs in no other row (a typo? merge it into another value or drop the row)")


def normalised_text(text: str) -> str:
    """Case- and whitespace-insensitive form used to detect duplicate rows."""
    import unicodedata

    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _check_overlap(train: list[Example], test: list[Example], train_path: Path, test_path: Path) -> None:
    seen = {normalised_text(ex.text): ex for ex in train}
    for ex in test:
        twin = seen.get(normalised_text(ex.text))
        if twin is not None:
            raise DataError(f"{test_path}: row {ex.row + 1}: same text as {train_path.name} row {twin.row + 1} "
                            "(train/test leakage); remove one, or add the data audit to measure and gate overlap")


def _required_text(row: dict[str, Any], column: str, key: str, where: str) -> str:
    if column not in row:
        raise DataError(f"{where}: missing column {column!r} ({key})")
    value = row[column]
    if _blank(value) or not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: empty or non-text value in column {column!r}")
    return value


def _split(rows: list[Example], fraction: float, seed: int, task: str, path: Path,
           what: str) -> tuple[list[Example], list[Example]]:
    from sklearn.model_selection import train_test_split

    stratify = [ex.label for ex in rows] if task == "classification" else None
    n_holdout = max(1, round(len(rows) * fraction))
    if len(rows) - n_holdout < 2:
        raise DataError(f"{path}: {len(rows)} rows are too few to split off a {what} set")
    if stratify is not None:
        counts: dict[int | None, int] = {}
        for label in stratify:
            counts[label] = counts.get(label, 0) + 1
        if min(counts.values()) < 2 or n_holdout < len(counts):
            stratify = None  # too few rows per class to stratify; fall back to a seeded split
    keep, hold = train_test_split(rows, test_size=n_holdout, random_state=seed, stratify=stratify)
    return list(keep), list(hold)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _label_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
