"""A data-parallel run: the same tiny suite under ``torchrun`` with 2 CPU processes (DDP over
gloo) gives the single-process report within tolerance, and only the main process writes.

The base model's figures come from inference sharded across the two processes and gathered,
so they must equal the single-process figures exactly; the adapter is trained on a different
(distributed) data order, so its figures match within a tolerance.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from click.testing import CliRunner

from auditft.cli import cli
from auditft.testing import toy_classification_data, write_suite

AUDITS = [
    {"kind": "accuracy", "gates": [{"metric": "accuracy", "min": 0.6, "rationale": "toy"}]},
    {"kind": "fairness", "options": {"min_group_size": 10},
     "gates": [{"metric": "max_group_regression", "max": 0.5, "rationale": "toy"}]},
    {"kind": "kfold", "options": {"k": 2},
     "gates": [{"metric": "kfold_mean_accuracy", "min": 0.0, "rationale": "toy"}]},
]


def _report(reports):
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    return run_dir, json.loads((run_dir / "report.json").read_text())


def test_two_cpu_processes_match_one(tmp_path, tiny_model_dir):
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, audits=AUDITS)
    single = CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "single")])
    assert single.exit_code == 0, single.output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUDITFT_PROGRESS": "0"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "auditft", "run", str(suite), "--out", str(tmp_path / "ddp")],
        env=env, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("PASSED") == 1  # one process prints the summary

    one_dir, one = _report(tmp_path / "single")
    two_dir, two = _report(tmp_path / "ddp")  # exactly one run directory: only rank 0 created one
    assert two["manifest"]["hardware"]["processes"] == 2 and one["manifest"]["hardware"]["processes"] == 1
    # only the main process wrote: one created and one gated event, the scratch space is gone
    records = [json.loads(line) for line in (two_dir / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in records if e["type"] != "sealed"] == ["created", "gated"]
    sealed = [e["file"] for e in records if e["type"] == "sealed"]
    assert sealed and len(sealed) == len(set(sealed))  # each cache file sealed once, by rank 0
    assert not (two_dir / "work").exists()
    assert CliRunner().invoke(cli, ["verify", str(two_dir)]).exit_code == 0

    # the suite's batch_size is the global batch: the same number of optimiser steps
    assert two["tuner"]["steps"] == one["tuner"]["steps"] > 0
    assert two["manifest"]["splits"] == one["manifest"]["splits"]
    assert [(c["audit"], c["metric"]) for c in two["checks"]] == [(c["audit"], c["metric"]) for c in one["checks"]]
    assert two["verdict"] == one["verdict"] == "passed"
    acc1, acc2 = one["audits"]["accuracy"]["metrics"], two["audits"]["accuracy"]["metrics"]
    assert acc2["accuracy"]["base_value"] == acc1["accuracy"]["base_value"]  # sharded + gathered inference
    assert abs(acc2["accuracy"]["value"] - acc1["accuracy"]["value"]) <= 0.1
    assert acc2["accuracy"]["n"] == acc1["accuracy"]["n"] == 120
    k1, k2 = one["audits"]["kfold"]["metrics"], two["audits"]["kfold"]["metrics"]
    assert abs(k2["kfold_mean_accuracy"]["value"] - k1["kfold_mean_accuracy"]["value"]) <= 0.15
    assert len(two["audits"]["kfold"]["evidence"]["folds"]) == 2


LEAVES_THE_GROUP = """
import atexit
import torch.distributed as dist
from auditft import distributed

atexit.register(lambda: print(f"rank {distributed.rank()} still joined: {dist.is_initialized()}", flush=True))
distributed.init()
assert distributed.gather(distributed.rank()) == [0, 1]
distributed.broadcast({"report": "the last collective of a run"})
distributed.finish()
"""


def test_a_finished_run_leaves_the_group_before_the_interpreter_is_torn_down(tmp_path):
    # a process that exits with the group joined can be aborted by gloo's worker threads during
    # interpreter teardown (seen in CI: SIGABRT after a finished run, so torchrun reported failure)
    script = tmp_path / "job.py"
    script.write_text(LEAVES_THE_GROUP, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    # the two processes share the launcher's stdout, so their lines may interleave
    assert sorted(re.findall(r"rank \d still joined: (?:True|False)", launched.stdout)) == [
        "rank 0 still joined: False", "rank 1 still joined: False"]
