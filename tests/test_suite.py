"""Suite validation: unknown keys, wrong types, plugin options, gate metrics; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.cli import cli
from auditft.errors import SuiteError
from auditft.suite import load_suite, parse_duration


def _edit(path: Path, change) -> Path:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_valid_suite_loads_and_resolves_paths(toy, pm):
    directory, suite_path = toy
    suite = load_suite(suite_path, pm)
    assert suite.name == "toy" and suite.tuner.kind == "lora"
    assert suite.resolve(suite.data.train) == directory / "train.jsonl"
    assert suite.seed == 7
    assert suite.resolved_dict()["data"]["train"] == str((directory / "train.jsonl").resolve())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["data"].update(text_col="x"), "data.text_col: unknown key"),
        (lambda d: d["audits"][0]["gates"][0].update(maximum=1), "audits[0].gates[0].maximum: unknown key"),
        (lambda d: d["tuner"]["training"].update(epochs="many"), "tuner.training.epochs: Input should be a valid number"),
        (lambda d: d.update(task="regression"), "task: Input should be 'classification' or 'generation'"),
        (lambda d: d.update(name="../escape"), "name: String should match pattern"),
        (lambda d: d["audits"][0]["gates"][0].update(max=0.5), "audits[0].gates[0]: Value error, give exactly one of 'min' or 'max'"),
        (lambda d: d["release"].update(review_window="soon"), "release.review_window: Value error, invalid duration 'soon'"),
        (lambda d: d.pop("model"), "model: Field required"),
        (lambda d: d["tuner"].update(kind="lorax"), "tuner.kind: unknown tuner 'lorax' (known: adapter, distill, freeze, full, ia3, lora, prefix, prompt, ptuning, qlora)"),
        (lambda d: d["audits"][0].update(kind="vibes"), "audits[0].kind: unknown audit 'vibes' (known: accuracy, calibration, data, fairness, hallucination, kfold"),
        (lambda d: d["tuner"]["options"].update(r=0), "tuner.options.r: Input should be greater than or equal to 1"),
        (lambda d: d["tuner"]["options"].update(rank=4), "tuner.options.rank: unknown key"),
        (lambda d: d["audits"][0].update(options={"n_boot": 5}), "audits[0].options.n_boot: Input should be greater than or equal to 100"),
        (lambda d: d["audits"][0]["gates"][0].update(metric="precision"), "audits[0].gates[0].metric: audit 'accuracy' has no metric 'precision'"),
        (lambda d: d["tuner"].update(kind="distill", options={}) or d.update(task="generation"),
         "tuner.kind: tuner 'distill' does not support task 'generation'"),
        (lambda d: d["tuner"].update(kind="prompt", options={}), "tuner.kind: tuner 'prompt' does not support task 'classification'"),
        (lambda d: d["tuner"]["training"].update(early_stopping_patience=2) or d["data"].update(validation_fraction=0),
         "tuner.training.early_stopping_patience: early stopping needs a validation split"),
    ],
)
def test_invalid_suites_name_file_and_key_path(toy, pm, change, expected):
    _, suite_path = toy
    _edit(suite_path, change)
    with pytest.raises(SuiteError) as info:
        load_suite(suite_path, pm)
    message = str(info.value)
    assert message.startswith(f"{suite_path}: ")
    assert expected in message
    assert "\n" not in message


def test_malformed_yaml_names_line(tmp_path, pm):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntask: [unclosed\n")
    with pytest.raises(SuiteError, match=r"bad.yaml: invalid YAML: line \d+, column \d+"):
        load_suite(path, pm)


def test_non_mapping_and_missing_file(tmp_path, pm):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(SuiteError, match="must be a YAML mapping"):
        load_suite(path, pm)
    with pytest.raises(SuiteError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml", pm)


def test_durations():
    assert parse_duration("0s") == 0 and parse_duration("30m") == 1800
    assert parse_duration("24h") == 86400 and parse_duration("7d") == 7 * 86400
    with pytest.raises(ValueError):
        parse_duration("1 fortnight")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["data"].update(train="missing.jsonl"), "missing.jsonl: data file not found"),
        (lambda d: d["data"].update(label_column="outcome"), "row 1: missing column 'outcome' (data.label_column)"),
    ],
)
def test_cli_invalid_input_exits_2_with_one_line_and_no_run_dir(toy, change, expected):
    directory, suite_path = toy
    _edit(suite_path, change)
    out = directory / "reports"
    for command in (["validate", str(suite_path)], ["run", str(suite_path), "--out", str(out)]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
        assert "Traceback" not in result.output
    assert not out.exists()


def test_validate_reports_counts(toy):
    _, suite_path = toy
    result = CliRunner().invoke(cli, ["validate", str(suite_path)])
    assert result.exit_code == 0, result.output
    assert "valid (classification, tuner lora, audits accuracy; train 216 / validation 24 / test 120 rows" in result.output
