"""The cached plugin table (``auditft.plugin_table``): ``auditft plugins`` and ``--help`` start
without importing plugins when nothing that could change the table has changed, and print the
same as without the cache; any change to the entry points, their source or the plugin
environment makes a new table."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditft import plugin_table

PROBE = """
import sys
from auditft.cli import cli
try:
    cli.main({args!r}, prog_name="auditft", standalone_mode=False)
except SystemExit:
    pass
print("LOADED" if "auditft.plugins" in sys.modules else "NOT-LOADED", file=sys.stderr)
"""


def _auditft(args: list[str], cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "AUDITFT_NO_PLUGIN_CACHE"}
    environ.update({"AUDITFT_CACHE": str(cache), **env})
    return subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_plugins_from_the_cache_print_what_loading_prints_and_import_no_plugin(tmp_path):
    first = _auditft(["plugins"], tmp_path)
    assert first.returncode == 0 and "LOADED" in first.stderr.split()
    assert len(list(tmp_path.glob("plugin-table-*.json"))) == 1
    second = _auditft(["plugins"], tmp_path)
    assert "NOT-LOADED" in second.stderr.split()
    assert json.loads(second.stdout) == json.loads(first.stdout)
    table = _auditft(["plugins", "--format", "table"], tmp_path)
    uncached = _auditft(["plugins", "--format", "table"], tmp_path, AUDITFT_NO_PLUGIN_CACHE="1")
    assert table.stdout == uncached.stdout and "NOT-LOADED" in table.stderr.split()
    assert "LOADED" in uncached.stderr.split()


def test_help_loads_no_plugin_once_the_table_says_none_adds_commands(tmp_path):
    assert "LOADED" in _auditft(["--help"], tmp_path).stderr.split()  # a miss: load and keep the table
    cached = _auditft(["--help"], tmp_path)
    assert "NOT-LOADED" in cached.stderr.split() and "release" in cached.stdout


def test_help_loads_plugins_when_a_cached_plugin_adds_commands(tmp_path):
    _auditft(["plugins"], tmp_path)
    (path,) = tmp_path.glob("plugin-table-*.json")
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored["table"]["plugins"][0]["hooks"].append("auditft_register_commands")
    path.write_text(json.dumps(stored), encoding="utf-8")
    assert "LOADED" in _auditft(["--help"], tmp_path).stderr.split()


def test_strict_plugins_never_trusts_a_cached_load_error(tmp_path):
    """A cached table with a failed plugin would print it; ``--strict-plugins`` must load for
    real (here nothing is broken, so it succeeds, and the stale failure is not shown)."""
    _auditft(["plugins"], tmp_path)
    (path,) = tmp_path.glob("plugin-table-*.json")
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored["table"]["load_errors"] = [{"plugin": "ghost", "error": "ImportError: gone"}]
    path.write_text(json.dumps(stored), encoding="utf-8")
    assert "ghost" in _auditft(["plugins"], tmp_path).stdout  # lenient: the cache is trusted
    strict = _auditft(["--strict-plugins", "plugins"], tmp_path)
    assert "LOADED" in strict.stderr.split() and "ghost" not in strict.stdout


def test_a_corrupt_cache_file_is_a_miss(tmp_path):
    _auditft(["plugins"], tmp_path)
    (path,) = tmp_path.glob("plugin-table-*.json")
    path.write_text("{not json", encoding="utf-8")
    again = _auditft(["plugins"], tmp_path)
    assert again.returncode == 0 and "LOADED" in again.stderr.split() and json.loads(again.stdout)["plugins"]


class _EntryPoint:
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value, self.module, self.dist = name, value, value.split(":")[0], None


def test_the_fingerprint_follows_entry_points_their_source_and_the_environment(tmp_path, monkeypatch):
    package = tmp_path / "fp_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points
    env: dict[str, str] = {}
    before = plugin_table.fingerprint(env)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [*real(group=group), _EntryPoint("fp", "fp_plugin:plugin")])
    installed = plugin_table.fingerprint(env)
    assert installed != before
    assert plugin_table.fingerprint(env) == installed  # stable while nothing changes
    (package / "__init__.py").write_text("X = 22\n", encoding="utf-8")  # an edited editable plugin
    edited = plugin_table.fingerprint(env)
    assert edited != installed
    assert plugin_table.fingerprint({"AUDITFT_DISABLE_PLUGINS": "fp"}) != edited


@pytest.mark.parametrize("variable", plugin_table.BYPASS)
def test_the_cache_can_be_turned_off(tmp_path, variable):
    env = {"AUDITFT_CACHE": str(tmp_path), variable: "1"}
    plugin_table.store({"plugins": []}, env)
    assert plugin_table.load(env) is None and not list(tmp_path.iterdir())
