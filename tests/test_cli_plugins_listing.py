"""What the CLI shows about plugins: lenient ``validate`` warns about a plugin that failed to
load (``--strict-plugins`` makes it fatal), and ``auditft plugins`` is readable at 80 columns,
names uncut, with a row for a failed plugin and each kind's declarations."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import types

import pytest
from click.testing import CliRunner

from auditft import hookimpl
from auditft.cli import cli
from auditft.cli.common import load_failure_warnings
from auditft.plugins import DEFAULT_PLUGINS


class _EntryPoint:
    def __init__(self, name: str, module: str) -> None:
        self.name, self.group, self.value, self.module = name, "auditft", module, module

    def load(self):
        return importlib.import_module(self.module)  # a module that is None in sys.modules raises


class _Dist:
    version = "1.0"

    def __init__(self, name: str, eps: list[_EntryPoint]) -> None:
        self.metadata = {"name": name}
        self.name = self._normalized_name = name
        self.entry_points = eps


@pytest.fixture
def installed(monkeypatch):
    """A broken distribution (its module fails to import) and one whose audit declares the
    network and extra weights."""
    declared = types.ModuleType("auditft_declares_for_this_test")

    @hookimpl
    def auditft_register_audits(register):
        register.add("netjudge", dict, metrics={"m": "higher"}, needs_network=True,
                     extra_weights=["hf:org/judge@abc123"])

    declared.auditft_register_audits = auditft_register_audits
    monkeypatch.setitem(sys.modules, "auditft_declares_for_this_test", declared)
    monkeypatch.setitem(sys.modules, "auditft_broken_for_this_test", None)
    dists = [_Dist("auditft-broken", [_EntryPoint("broken", "auditft_broken_for_this_test")]),
             _Dist("auditft-declares", [_EntryPoint("declares", "auditft_declares_for_this_test")])]
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: dists)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [ep for d in dists for ep in d.entry_points if group in (None, ep.group)])


def _invoke(*args: str, width: int = 80):
    return CliRunner(env={"COLUMNS": str(width)}).invoke(cli, list(args))


def test_lenient_validate_warns_about_the_broken_plugin_and_stays_valid(toy, installed):
    _, suite = toy
    result = _invoke("validate", str(suite))
    assert result.exit_code == 0, result.output
    assert ": valid (" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("warning: plugin 'broken' failed to load (ModuleNotFoundError: ")
    assert "--strict-plugins makes this fatal" in warnings[0]
    assert "warning" not in result.stdout  # the warning goes to stderr, the verdict to stdout


def test_validate_without_load_failures_prints_no_warning(toy):
    _, suite = toy
    result = _invoke("validate", str(suite))
    assert result.exit_code == 0 and "warning" not in result.output, result.output


def test_strict_validate_fails_on_the_broken_plugin(toy, installed):
    _, suite = toy
    result = _invoke("--strict-plugins", "validate", str(suite))
    assert result.exit_code == 2, result.output
    assert "'broken' failed to load" in result.output and ": valid (" not in result.output


def test_validate_lists_what_the_suites_kinds_declare(toy, installed):
    import yaml

    _, suite = toy
    data = yaml.safe_load(suite.read_text())
    data["audits"].append({"kind": "netjudge"})
    suite.write_text(yaml.safe_dump(data))
    result = _invoke("validate", str(suite))
    assert result.exit_code == 0, result.output
    assert "audit 'netjudge' (plugin 'declares') needs the network" in result.stdout
    assert "audit 'netjudge' (plugin 'declares') loads extra weights: hf:org/judge@abc123" in result.stdout


def test_warning_is_one_line_without_terminal_escapes():
    from auditft.plugins import LoadFailure, PluginManager

    pm = PluginManager()
    pm.load_failures.append(LoadFailure("evil\x1b[2J", "ImportError: no\nmodule \x1b[31mred " + "x" * 500))
    (line,) = load_failure_warnings(pm)
    assert "\x1b" not in line and "\n" not in line and len(line) < 500
    assert line.startswith("warning: plugin 'evil\\x1b[2J' failed to load (ImportError: no module \\x1b[31mred x")


def test_plugins_table_at_80_columns_names_every_kind_and_plugin_uncut(installed):
    result = _invoke("plugins", "--format", "table")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, result.output
    assert "…" not in result.output
    info = json.loads(_invoke("plugins", "--format", "json").output)
    assert {p["name"] for p in info["plugins"]} >= set(DEFAULT_PLUGINS)  # every built-in is listed
    for entry in info["tuners"] + info["audits"]:
        # the kind and its plugin's full name on one row of the table
        row = [line.split() for line in lines if line.split()[:1] == [entry["kind"]]]
        assert row and entry["plugin"] in row[0], (entry["kind"], result.output)


def test_plugins_table_gives_the_failed_plugin_a_row_and_shows_declarations(installed):
    lines = _invoke("plugins", "--format", "table").output.splitlines()
    (index,) = [i for i, line in enumerate(lines) if "broken" in line.split()]
    assert "failed to load: ModuleNotFoundError" in " ".join(lines[index:index + 3])
    (net,) = [i for i, line in enumerate(lines) if line.split()[:1] == ["netjudge"]]
    assert "declares" in lines[net].split() and "1.0" in lines[net].split()
    follow = " ".join(lines[net + 1:net + 4])
    assert "needs network" in follow and "extra weights: hf:org/judge@abc123" in follow


def test_plugins_json_keeps_its_fields_and_adds_status(installed):
    result = _invoke("plugins", "--format", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert set(info) >= {"plugins", "tuners", "audits", "load_errors"}
    declares = {p["name"]: p for p in info["plugins"]}["declares"]
    assert {"name", "version", "builtin", "hooks", "tuners", "audits"} <= set(declares)
    assert declares["status"] == "loaded" and declares["audits"] == ["netjudge"]
    (failure,) = info["load_errors"]
    assert failure["plugin"] == "broken" and failure["error"].startswith("ModuleNotFoundError")
    assert failure["status"] == "failed to load"
