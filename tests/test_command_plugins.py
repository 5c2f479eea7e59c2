"""One plugin manager per command: ``--strict-plugins`` and the command's plugin set reach
everything the command calls (re-rendering after a decision, ``auditft report``, the RELEASED
rendering of ``auditft release``), instead of each of them loading plugins again, leniently."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.cli import cli


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


class _EntryPoint:
    name = group = "auditft"
    value = module = "auditft_broken_for_this_test"

    def __init__(self) -> None:
        self.name, self.group = "broken", "auditft"

    def load(self):
        return importlib.import_module(self.module)  # raises: the module is None in sys.modules


class _Dist:
    metadata = {"name": "auditft-broken"}
    version = "1.0"
    name = _normalized_name = "auditft-broken"
    entry_points = [_EntryPoint()]


@pytest.fixture
def broken_plugin_installed(monkeypatch):
    """An installed distribution whose ``auditft`` entry point fails to import."""
    monkeypatch.setitem(sys.modules, "auditft_broken_for_this_test", None)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [_Dist()])
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [ep for ep in _Dist.entry_points if group in (None, ep.group)])


def test_strict_plugins_reach_report_rerender(runs, broken_plugin_installed):
    run: Path = runs["blocked"]
    before = (run / "report.html").read_bytes()
    strict = invoke("--strict-plugins", "report", run)
    assert strict.exit_code != 0 and "'broken' failed to load" in strict.output, strict.output
    assert (run / "report.html").read_bytes() == before  # nothing rendered with a partial plugin set
    lenient = invoke("report", run)
    assert lenient.exit_code == 0, lenient.output


def test_strict_plugins_reach_release_and_nothing_ships(runs, tmp_path, broken_plugin_installed):
    run: Path = runs["blocked"]
    assert invoke("waive", run, "macro_f1", "--reviewer", "bob", "--reason", "toy").exit_code == 0
    assert invoke("approve", run, "--reviewer", "carol", "--comment", "fine").exit_code == 0
    registry = tmp_path / "registry"
    strict = invoke("--strict-plugins", "release", run, "--to", registry)
    assert strict.exit_code != 0 and "'broken' failed to load" in strict.output, strict.output
    assert not any(registry.rglob("*")) if registry.exists() else True
    released = invoke("release", run, "--to", registry)
    assert released.exit_code == 0, released.output


def test_decisions_rerender_with_the_commands_plugins(runs, broken_plugin_installed):
    run: Path = runs["blocked"]
    # the decision is refused before it is recorded: the command cannot build its plugin set
    strict = invoke("--strict-plugins", "reject", run, "--reviewer", "bob", "--comment", "no")
    assert strict.exit_code != 0 and "'broken' failed to load" in strict.output, strict.output
    from auditft.signoff.review import load_review

    assert load_review(run).rejections == []


def test_library_callers_without_a_manager_get_the_installed_plugins(runs):
    from auditft.signoff.rendering import rerender

    path = rerender(runs["blocked"])
    assert "BLOCKED" in path.read_text(encoding="utf-8")
