"""`auditft run --resume` after a real SIGKILL at several points reaches the same verdict and
the same numbers as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from auditft.cli import cli
from auditft.testing import toy_classification_data, write_suite

#: a child process that runs the suite and SIGKILLs itself at the named point
CHILD = r'''
import os, signal, sys
from pathlib import Path
from auditft import hookimpl
from auditft.plugins import make_plugin_manager
from auditft.run import execute, prepare

point, suite, reports = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)

class Killer:
    @hookimpl
    def auditft_tuning_finished(self, run, tuning):
        if point == "after-tuning":
            die()

    @hookimpl
    def auditft_audit_finished(self, run, result):
        if point == "after-audit":
            die()

if point == "during-training":
    import transformers
    original = transformers.Trainer.training_step
    def step(self, *args, **kwargs):
        if self.state.global_step >= 5:
            die()
        return original(self, *args, **kwargs)
    transformers.Trainer.training_step = step
if point == "saving-checkpoint":
    # checkpoint-10's weights are written, its optimizer and trainer state are not
    import transformers
    original_save = transformers.Trainer._save_optimizer_and_scheduler
    def save(self, output_dir):
        if self.state.global_step >= 10:
            die()
        return original_save(self, output_dir)
    transformers.Trainer._save_optimizer_and_scheduler = save
if point == "writing-report":
    import auditft.report.html as html
    html.render_html = die

pm = make_plugin_manager(entry_points=False, env={})
pm.register(Killer(), name="killer")
execute(prepare(suite, pm), pm, reports=reports, author="alice")
'''


@pytest.fixture(scope="module")
def toy_suite(tmp_path_factory, tiny_model_dir):
    directory = tmp_path_factory.mktemp("resume")
    toy_classification_data(directory)
    suite = write_suite(directory / "suite.yaml", model_dir=tiny_model_dir)
    spec = yaml.safe_load(suite.read_text())
    spec["tuner"]["training"]["checkpoint_steps"] = 5  # killed in step 6: resumes from step 5
    suite.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(directory / "clean"), "--author", "alice"])
    clean = json.loads(next((directory / "clean").glob("*/report.json")).read_text())
    assert result.exit_code in (0, 3), result.output
    return suite, clean


@pytest.mark.parametrize("point", ["during-training", "saving-checkpoint", "after-tuning", "after-audit", "writing-report"])
def test_killed_run_resumes_to_the_same_verdict(toy_suite, tmp_path, point):
    suite, clean = toy_suite
    reports = tmp_path / "reports"
    child = subprocess.run([sys.executable, "-c", CHILD, point, str(suite), str(reports)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] != "complete" and not (run_dir / "manifest.json").exists()
    status = CliRunner().invoke(cli, ["status", str(run_dir), "--format", "json"])
    assert json.loads(status.output)["state"] == "incomplete"
    cached = run_dir / "work" / "audits" / "accuracy.json"
    cached_seconds = json.loads(cached.read_text())["result"]["seconds"] if cached.exists() else None
    assert (cached_seconds is not None) == (point in ("after-audit", "writing-report"))

    result = CliRunner().invoke(cli, ["run", str(suite), "--resume", str(run_dir)])
    assert result.exit_code in (0, 3), result.output
    report = json.loads((run_dir / "report.json").read_text())
    assert report["run_id"] == run_dir.name and report["author"] == "alice"
    assert report["verdict"] == clean["verdict"]
    assert report["audits"]["accuracy"]["metrics"] == clean["audits"]["accuracy"]["metrics"]
    tuner, clean_tuner = report["tuner"], clean["tuner"]
    assert tuner["steps"] == clean_tuner["steps"]
    if point in ("during-training", "saving-checkpoint"):
        # continued from the checkpoint at step 5, not from scratch (nor from the half-written
        # checkpoint-10); the same loss at every logged step as the uninterrupted run means no
        # batch was repeated or skipped
        assert tuner["facts"]["resumed_from_step"] == 5
        assert tuner["loss_curve"] == clean_tuner["loss_curve"]
    if cached_seconds is not None:  # a finished audit is not run again
        assert report["audits"]["accuracy"]["seconds"] == cached_seconds
    types = [json.loads(line)["type"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [t for t in types if t != "sealed"] == ["created", "resumed", "gated"]
    # the report says the run was resumed, and from which phase
    assert [r["from_phase"] for r in report["resumed"]] == [state["phase"]]
    assert report["recomputed_on_resume"] == []
    assert CliRunner().invoke(cli, ["verify", str(run_dir)]).exit_code == 0
    assert not (run_dir / "work").exists()


def test_resume_refuses_a_complete_run_and_changed_inputs(toy_suite, tmp_path):
    suite, clean = toy_suite
    done = next(p for p in (suite.parent / "clean").iterdir() if p.is_dir())
    result = CliRunner().invoke(cli, ["run", str(suite), "--resume", str(done)])
    assert result.exit_code == 2 and "already complete" in result.output
    result = CliRunner().invoke(cli, ["run", str(suite), "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not an auditft run directory" in result.output
