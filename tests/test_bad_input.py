"""The bad-input corpus: every way a user can hand auditft broken input, through the real CLI.

Each case must give exit code 2, exactly one line (``error: ...``) that names the file and
the key path or the row, no traceback, and no run directory that claims to be complete.
Cases change a valid toy suite (``toy`` fixture: tiny model, toy jsonl data) one defect at a
time. The messages are asserted verbatim enough that a vaguer message fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.cli import cli


def _suite(d: Path, change) -> None:
    path = d / "suite.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _row(d: Path, number: int, row, name: str = "train.jsonl") -> None:
    """Replace 1-based row ``number`` of a data file (a dict, or a raw line)."""
    path = d / name
    lines = path.read_text().splitlines()
    lines[number - 1] = row if isinstance(row, str) else json.dumps(row)
    path.write_text("\n".join(lines) + "\n")


def _first(d: Path, name: str = "train.jsonl") -> dict:
    return json.loads((d / name).read_text().splitlines()[0])


def _all_rows(d: Path, change, name: str = "train.jsonl") -> None:
    path = d / name
    rows = [change(json.loads(line)) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _pickle_model(d: Path) -> None:
    model = d / "pickled"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    _suite(d, lambda s: s["model"].update(base="pickled"))


def _write(name: str, content: bytes | str):
    def change(d: Path) -> None:
        path = d / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return change


# (id, how to break the toy directory, the fragment the one-line error must contain)
CASES = [
    # -- the suite file -----------------------------------------------------------------
    ("malformed-yaml", _write("suite.yaml", "name: toy\ntask: [classification\n"),
     "suite.yaml: invalid YAML: line 3, column 1"),
    ("suite-not-a-mapping", _write("suite.yaml", "- just\n- a list\n"),
     "suite.yaml: a suite must be a YAML mapping, got list"),
    ("suite-not-utf8", _write("suite.yaml", b"name: caf\xe9\n"), "suite.yaml: cannot read suite file"),
    ("unknown-top-level-key", lambda d: _suite(d, lambda s: s.update(colour="red")), "suite.yaml: colour: unknown key"),
    ("unknown-nested-key", lambda d: _suite(d, lambda s: s["data"].update(text_col="x")),
     "suite.yaml: data.text_col: unknown key"),
    ("wrong-type", lambda d: _suite(d, lambda s: s["tuner"]["training"].update(epochs="many")),
     "suite.yaml: tuner.training.epochs: Input should be a valid number"),
    ("missing-section", lambda d: _suite(d, lambda s: s.pop("model")), "suite.yaml: model: Field required"),
    ("no-audits", lambda d: _suite(d, lambda s: s.update(audits=[])), "suite.yaml: audits: List should have at least 1 item"),
    ("name-with-path-separators", lambda d: _suite(d, lambda s: s.update(name="../../etc")),
     "suite.yaml: name: String should match pattern"),
    ("unknown-tuner", lambda d: _suite(d, lambda s: s["tuner"].update(kind="lorax")),
     "suite.yaml: tuner.kind: unknown tuner 'lorax'"),
    ("unknown-audit", lambda d: _suite(d, lambda s: s["audits"][0].update(kind="vibes")),
     "suite.yaml: audits[0].kind: unknown audit 'vibes'"),
    ("tuner-option-rejected", lambda d: _suite(d, lambda s: s["tuner"]["options"].update(r=0)),
     "suite.yaml: tuner.options.r: Input should be greater than or equal to 1"),
    ("audit-option-rejected", lambda d: _suite(d, lambda s: s["audits"][0].update(options={"n_boot": 5})),
     "suite.yaml: audits[0].options.n_boot: Input should be greater than or equal to 100"),
    ("gate-on-unknown-metric", lambda d: _suite(d, lambda s: s["audits"][0]["gates"][0].update(metric="vibes")),
     "suite.yaml: audits[0].gates[0].metric: audit 'accuracy' has no metric 'vibes'"),
    ("gate-with-two-bounds", lambda d: _suite(d, lambda s: s["audits"][0]["gates"][0].update(max=0.9)),
     "suite.yaml: audits[0].gates[0]: Value error, give exactly one of 'min' or 'max'"),
    ("zero-audit-timeout", lambda d: _suite(d, lambda s: s["audits"][0].update(timeout="0s")),
     "suite.yaml: audits[0].timeout: Value error, timeout must be above 0s"),
    ("tuner-wrong-task", lambda d: _suite(d, lambda s: s["tuner"].update(kind="prompt", options={})),
     "suite.yaml: tuner.kind: tuner 'prompt' does not support task 'classification'"),
    ("duplicate-labels", lambda d: _suite(d, lambda s: s["data"].update(labels=["urgent", "urgent"])),
     "suite.yaml: data.labels: Value error, labels must be unique"),
    # -- data files ---------------------------------------------------------------------
    ("missing-data-file", lambda d: (d / "train.jsonl").unlink(), "train.jsonl: data file not found"),
    ("unreadable-data-file", lambda d: ((d / "train.jsonl").unlink(), (d / "train.jsonl").mkdir()),
     "train.jsonl: cannot read: it is a directory, not a data file"),
    ("unsupported-format", lambda d: _suite(d, lambda s: s["data"].update(train="train.txt")),
     "train.txt: unsupported data format '.txt'"),
    ("empty-train-file", _write("train.jsonl", ""), "train.jsonl: no rows"),
    ("empty-test-file", _write("test.jsonl", ""), "test.jsonl: no rows"),
    ("invalid-json-row", lambda d: _row(d, 5, '{"text": "x", '), "train.jsonl: row 5: invalid JSON"),
    ("row-not-an-object", lambda d: _row(d, 6, "[1, 2]"), "train.jsonl: row 6: expected a JSON object"),
    ("non-utf8-bytes", lambda d: (d / "train.jsonl").write_bytes((d / "train.jsonl").read_bytes() + b'{"text": "caf\xe9"}\n'),
     "train.jsonl: row 241: not valid UTF-8"),
    ("corrupt-parquet", lambda d: (_write("train.parquet", b"PAR1 garbage")(d),
                                   _suite(d, lambda s: s["data"].update(train="train.parquet"))),
     "train.parquet: cannot read"),
    ("missing-text-column", lambda d: _row(d, 7, {k: v for k, v in _first(d).items() if k != "text"}),
     "train.jsonl: row 7: missing column 'text' (data.text_column)"),
    ("missing-label-column", lambda d: _suite(d, lambda s: s["data"].update(label_column="outcome")),
     "train.jsonl: row 1: missing column 'outcome' (data.label_column)"),
    ("label-outside-label-set", lambda d: _row(d, 8, {**_first(d), "label": "maybe"}),
     "train.jsonl: row 8: label 'maybe' is not one of data.labels"),
    ("label-index-out-of-range", lambda d: _row(d, 9, {**_first(d), "label": 7}),
     "train.jsonl: row 9: label index 7 outside data.labels (0..1)"),
    ("empty-text", lambda d: _row(d, 10, {**_first(d), "text": "   "}),
     "train.jsonl: row 10: empty or non-text value in column 'text'"),
    ("nan-text", lambda d: _row(d, 11, '{"text": NaN, "label": "urgent", "sex": "f", "band": "y"}'),
     "train.jsonl: row 11: empty or non-text value in column 'text'"),
    ("numeric-text", lambda d: _row(d, 12, {**_first(d), "text": 42}),
     "train.jsonl: row 12: empty or non-text value in column 'text'"),
    ("missing-group-column", lambda d: _row(d, 13, {k: v for k, v in _first(d).items() if k != "sex"}),
     "train.jsonl: row 13: missing group column 'sex' (data.group_columns)"),
    ("row-far-over-max-length", lambda d: _row(d, 14, {**_first(d), "text": "word " * 2000}),
     "train.jsonl: row 14: column 'text' holds 10,000 characters, far over tuner.training.max_length (32 tokens)"),
    ("single-class-training-set", lambda d: _all_rows(d, lambda r: {**r, "label": "urgent"}),
     "train.jsonl: training data has a single class ('urgent')"),
    ("group-with-one-member", lambda d: _row(d, 15, {**_first(d), "sex": "femle"}),
     "train.jsonl: row 15: group column 'sex' value 'femle' occurs in no other row"),
    ("duplicate-across-train-and-test", lambda d: _row(d, 3, {**_first(d, "test.jsonl"), "text": _first(d)["text"].upper()},
                                                       "test.jsonl"),
     "test.jsonl: row 3: same text as train.jsonl row 1 (train/test leakage)"),
    ("cluster-column-missing", lambda d: _suite(d, lambda s: s["data"].update(cluster_column="patient")),
     "train.jsonl: row 1: missing cluster column 'patient' (data.cluster_column)"),
    ("cluster-id-empty", lambda d: (_suite(d, lambda s: s["data"].update(cluster_column="band")),
                                    _row(d, 16, {**_first(d), "band": ""})),
     "train.jsonl: row 16: cluster column 'band' (data.cluster_column) needs a non-empty scalar id"),
    ("cluster-column-is-the-text", lambda d: _suite(d, lambda s: s["data"].update(cluster_column="text")),
     "data: Value error, cluster_column 'text' is also data.text_column"),
    ("gate-correction-unknown", lambda d: _suite(d, lambda s: s.update(gate_correction="bonferroni")),
     "gate_correction: Input should be 'none' or 'holm'"),
    # -- the base model -----------------------------------------------------------------
    ("model-path-missing", lambda d: _suite(d, lambda s: s["model"].update(base="no/such/model")),
     "model.base: 'no/such/model': no such model directory"),
    ("model-pickle-only", _pickle_model, "only pickle weights (pytorch_model.bin)"),
]


@pytest.mark.parametrize(("breakage", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_no_run(toy, breakage, expected):
    directory, suite_path = toy
    breakage(directory)
    out = directory / "reports"
    for command in (["validate", str(suite_path)], ["run", str(suite_path), "--out", str(out)]):
        result = CliRunner().invoke(cli, command)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert expected in lines[0], lines[0]
        assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir()), "invalid input left a run directory behind"


def test_the_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("command", ["status", "verify", "report", "approve", "reject", "release", "resume"])
def test_a_directory_that_is_not_a_run(tmp_path, toy, command):
    _, suite_path = toy
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    args = {"approve": ["approve", str(not_a_run), "--reviewer", "bob", "--comment", "ok"],
            "reject": ["reject", str(not_a_run), "--reviewer", "bob", "--comment", "no"],
            "release": ["release", str(not_a_run), "--to", str(tmp_path / "out")],
            "resume": ["run", str(suite_path), "--resume", str(not_a_run)]}.get(command, [command, str(not_a_run)])
    result = CliRunner().invoke(cli, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "not-a-run" in lines[0] and "not an auditft run directory" in lines[0], result.output
    assert "Traceback" not in result.output
    assert list(not_a_run.iterdir()) == [] and not (tmp_path / "out").exists()
