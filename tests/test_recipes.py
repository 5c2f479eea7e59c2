"""A suite with several tuners (``tuners:``): one ordinary run per tuner on the same rows, the
base model's figures computed once, the comparison beside them, resume after a kill that
finishes only what was missing, and one-line errors naming ``tuners[i]``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from auditft.cli import cli
from auditft.fixtures import write_suite
from auditft.testing import toy_classification_data

TRAINING = {"epochs": 4, "learning_rate": 0.02, "batch_size": 8, "max_length": 32, "eval_batch_size": 64,
            "logging_steps": 5}


def several(directory: Path, model_dir: Path, tuners: list[dict], **extra: object) -> Path:
    toy_classification_data(directory)
    path = write_suite(directory / "single.yaml", model_dir=model_dir, **extra)
    raw = yaml.safe_load(path.read_text())
    raw.pop("tuner")
    raw["tuners"] = tuners
    out = directory / "multi.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


THREE = [{"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0}, "training": TRAINING},
         {"kind": "ia3", "training": TRAINING},
         {"kind": "lora", "name": "lora-r2", "options": {"r": 2, "alpha": 4}, "training": TRAINING}]


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def batch_of(reports: Path) -> tuple[Path, dict]:
    (folder,) = [p.parent for p in (reports / "compare").glob("*/batch.json")]
    return folder, json.loads((folder / "batch.json").read_text())


def test_one_normal_run_per_tuner_with_base_figures_computed_once(tmp_path, tiny_model_dir, monkeypatch):
    import auditft.models as models

    loads = []
    real = models.load_encoder
    monkeypatch.setattr(models, "load_encoder", lambda base: loads.append(1) or real(base))
    suite = several(tmp_path, tiny_model_dir, THREE)
    result = invoke("run", suite, "--out", tmp_path / "reports")
    assert result.exit_code in (0, 3), result.output
    folder, batch = batch_of(tmp_path / "reports")
    assert [t["name"] for t in batch["tuners"]] == ["lora", "ia3", "lora-r2"]
    assert all(t["state"] == "complete" for t in batch["tuners"])
    reports = [json.loads((tmp_path / "reports" / t["run_id"] / "report.json").read_text()) for t in batch["tuners"]]
    # each an ordinary run: its own suite name, tuner, gate and manifest, verifiable on its own
    assert [r["suite"] for r in reports] == ["toy-lora", "toy-ia3", "toy-lora-r2"]
    assert [r["tuner"]["kind"] for r in reports] == ["lora", "ia3", "lora"]
    for t in batch["tuners"]:
        assert invoke("verify", tmp_path / "reports" / t["run_id"]).exit_code == 0
    # the exit code is the batch's: 3 when any run was blocked, 0 when all passed
    verdicts = [r["verdict"] for r in reports]
    assert result.exit_code == (0 if set(verdicts) == {"passed"} else 3)
    # the base model's figures: computed once (one encoder load), identical in every report
    assert len(loads) == 1
    base = {json.dumps([c["base_value"] for c in r["checks"] if c["metric"] == "accuracy"]) for r in reports}
    assert len(base) == 1
    # the comparison beside the runs: every tuner's run, paired intervals on the same rows
    compared = json.loads((folder / "compare.json").read_text())
    assert [r["run_id"] for r in compared["runs"]] == [t["run_id"] for t in batch["tuners"]]
    assert len(compared["pairs"]) == 3
    paired = compared["pairs"][0]["metrics"]["accuracy:accuracy"]
    assert paired["ci_low"] <= paired["difference"] <= paired["ci_high"]
    assert (folder / "compare.html").is_file()
    assert "comparison:" in result.output


def test_a_killed_batch_resumes_finishing_only_what_was_missing(tmp_path, tiny_model_dir):
    slow = {**TRAINING, "epochs": 60, "checkpoint_steps": 5}  # long enough to be killed in the middle
    tuners = [THREE[0], {"kind": "ia3", "training": slow}, THREE[2]]
    suite = several(tmp_path, tiny_model_dir, tuners)
    reports = tmp_path / "reports"
    env = {**os.environ, "AUDITFT_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "auditft", "run", str(suite), "--out", str(reports)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            batches = list((reports / "compare").glob("*/batch.json"))
            if batches:
                try:
                    state = json.loads(batches[0].read_text())["tuners"][1]
                except (ValueError, KeyError):
                    state = {}
                if state.get("state") == "running":
                    time.sleep(1.0)  # into ia3's training
                    break
            assert proc.poll() is None, "the batch ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the second tuner never started")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    folder, before = batch_of(reports)
    first, second, third = before["tuners"]
    assert first["state"] == "complete" and second["state"] == "running" and third["state"] == "pending"
    first_report = (reports / first["run_id"] / "report.json").read_bytes()
    runs_before = sorted(p.name for p in reports.iterdir() if (p / "state.json").exists())

    result = invoke("run", suite, "--resume", folder)
    assert result.exit_code in (0, 3), result.output
    _, after = batch_of(reports)
    assert [t["state"] for t in after["tuners"]] == ["complete"] * 3
    # the finished run was kept untouched, the killed one finished in its own directory,
    # only the missing one is new
    assert after["tuners"][0]["run_id"] == first["run_id"]
    assert (reports / first["run_id"] / "report.json").read_bytes() == first_report
    assert after["tuners"][1]["run_id"] == second["run_id"]
    runs_after = sorted(p.name for p in reports.iterdir() if (p / "state.json").exists())
    assert set(runs_after) - set(runs_before) == {after["tuners"][2]["run_id"]}
    events = [json.loads(line) for line in (reports / "ledger.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events if e.get("run_id") == second["run_id"]].count("resumed") == 1
    assert not any(e["type"] == "resumed" for e in events if e.get("run_id") == first["run_id"])
    assert "(kept)" in result.output and "(resumed)" in result.output
    compared = json.loads((folder / "compare.json").read_text())
    assert len(compared["runs"]) == 3
    # a second resume has nothing left to do: every run kept, nothing new
    again = invoke("run", suite, "--resume", reports / first["run_id"])  # a run of the batch finds it too
    assert again.exit_code == result.exit_code, again.output
    assert again.output.count("(kept)") == 3
    assert sorted(p.name for p in reports.iterdir() if (p / "state.json").exists()) == runs_after


def test_tuner_selects_entries_and_kinds(tmp_path, tiny_model_dir):
    suite = several(tmp_path, tiny_model_dir, THREE)
    result = invoke("run", suite, "--out", tmp_path / "reports", "--tuner", "lora-r2")
    assert result.exit_code in (0, 3), result.output
    _, batch = batch_of(tmp_path / "reports")
    assert [t["name"] for t in batch["tuners"]] == ["lora-r2"]
    assert batch["comparison"] is None and "nothing to compare" in batch["comparison_note"]
    # a single-tuner suite runs each --tuner KIND with its own training settings
    single = tmp_path / "single.yaml"
    result = invoke("run", single, "--out", tmp_path / "other", "--tuner", "lora", "--tuner", "ia3")
    assert result.exit_code in (0, 3), result.output
    _, batch = batch_of(tmp_path / "other")
    assert [t["suite"] for t in batch["tuners"]] == ["toy-lora", "toy-ia3"]
    resolved = yaml.safe_load((tmp_path / "other" / batch["tuners"][1]["run_id"] / "suite.yaml").read_text())
    assert resolved["tuner"]["kind"] == "ia3" and resolved["tuner"]["training"]["epochs"] == TRAINING["epochs"]


@pytest.mark.parametrize(("tuners", "args", "message"), [
    ([THREE[0], {**THREE[1], "options": {"nonsense": 1}}], (), "tuners[1].options.nonsense: unknown key"),
    ([THREE[0], {"kind": "no-such-tuner"}], (), "tuners[1].kind: unknown tuner 'no-such-tuner'"),
    ([THREE[0], {"kind": "lora"}], (), "tuners[1].name: 'lora' is also tuners[0]'s name"),
    ([THREE[0], {"kind": "lora", "name": "Bad Name"}], (), "tuners[1].name: String should match pattern"),
    ([THREE[0], {"kind": "lora", "training": {"epochs": -1}}], (), "tuners[1].training.epochs"),
    ([], (), "tuners: must be a non-empty list"),
    (THREE, ("--tuner", "qlora"), "--tuner 'qlora' is not one of the suite's tuners (known: lora, ia3, lora-r2)"),
    ([{**THREE[0], "name": "x" * 32}], (), "the run's suite name"),
])
def test_bad_tuner_lists_are_one_line_errors_that_leave_nothing(tmp_path, tiny_model_dir, tuners, args, message):
    suite = several(tmp_path, tiny_model_dir, tuners,
                    **({"name": "a-rather-long-suite-name-for-this-test-case"} if "x" * 32 in str(tuners) else {}))
    for command in (("validate", suite), ("run", suite, "--out", tmp_path / "reports", *args)):
        if command[0] == "validate" and args:
            continue
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert result.output.count("\n") == 1
    assert not (tmp_path / "reports").exists()


def test_tuner_and_tuners_together_is_refused(tmp_path, tiny_model_dir):
    suite = several(tmp_path, tiny_model_dir, THREE)
    raw = yaml.safe_load(suite.read_text())
    raw["tuner"] = THREE[0]
    suite.write_text(yaml.safe_dump(raw))
    result = invoke("validate", suite)
    assert result.exit_code == 2 and "give either tuner (one) or tuners (a list), not both" in result.output


def test_resume_refuses_a_changed_tuner_and_a_foreign_folder(tmp_path, tiny_model_dir):
    suite = several(tmp_path, tiny_model_dir, THREE[:2])
    assert invoke("run", suite, "--out", tmp_path / "reports").exit_code in (0, 3)
    folder, _ = batch_of(tmp_path / "reports")
    raw = yaml.safe_load(suite.read_text())
    raw["tuners"][1]["training"] = {**TRAINING, "learning_rate": 0.5}
    suite.write_text(yaml.safe_dump(raw))
    result = invoke("run", suite, "--resume", folder)
    assert result.exit_code == 2 and "tuner 'ia3' changed since batch" in result.output
    result = invoke("run", suite, "--resume", tmp_path)
    assert result.exit_code == 2 and "neither a batch folder" in result.output


def test_a_tuner_that_ends_the_process_fails_its_run_and_the_batch_goes_on(tmp_path, tiny_model_dir):
    """A plugin's sys.exit(0) / os._exit(0) in one tuner cannot end the batch, nor make its
    exit code 0: that tuner's run is failed, the others run and are compared."""
    from auditft import guards, hookimpl
    from auditft.plugins import make_plugin_manager
    from auditft.recipes import run_all
    from auditft.testing import registered
    from auditft.tuner_list import expand

    class Exiting:
        def __init__(self, how):
            self.how = how

        def tune(self, job):
            sys.exit(0) if self.how == "sys" else os._exit(0)

    class Plugin:
        @hookimpl
        def auditft_register_tuners(self, register):
            register.add("sysexit", lambda options: Exiting("sys"), tasks=("classification",))
            register.add("osexit", lambda options: Exiting("os"), tasks=("classification",))

    suite = several(tmp_path, tiny_model_dir, [THREE[0], {"kind": "sysexit"}, {"kind": "osexit"}, THREE[1]])
    pm = make_plugin_manager(entry_points=False, env={})
    with registered(pm, Plugin(), "exiting"), guards.no_process_exit():
        result = run_all(expand(suite, pm), pm, reports=tmp_path / "reports", author="alice",
                         announce=lambda line: None)
    by_name = {o.name: o for o in result.outcomes}
    assert "sys.exit(0)" in by_name["sysexit"].error and "os._exit(0)" in by_name["osexit"].error
    assert by_name["lora"].report is not None and by_name["ia3"].report is not None
    assert result.exit_code() == 1
    _, batch = batch_of(tmp_path / "reports")
    assert [t["state"] for t in batch["tuners"]] == ["complete", "failed", "failed", "complete"]
    failed = tmp_path / "reports" / batch["tuners"][1]["run_id"]
    assert json.loads((failed / "state.json").read_text())["phase"] == "failed"
    assert len(json.loads((result.folder / "compare.json").read_text())["runs"]) == 2
