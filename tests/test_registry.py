"""The plugin core: built-ins, provenance, duplicates, broken plugins, misspelled hooks."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types

import pytest
from pydantic import BaseModel

from auditft import hookimpl
from auditft.errors import PluginError
from auditft.plugins import make_plugin_manager
from auditft.testing import registered


def test_builtins_are_registered_with_provenance(pm):
    lora = pm.tuners.get("lora")
    accuracy = pm.audits.get("accuracy")
    assert lora.plugin == "auditft.default_plugins.tuners.lora"
    assert accuracy.plugin == "auditft.default_plugins.audits.accuracy"
    import auditft

    assert lora.version == accuracy.version == auditft.__version__
    assert accuracy.metrics["accuracy"] == "higher"
    assert accuracy.min_n == 30


def test_duplicate_kind_names_both_plugins(pm):
    class Clash:
        @hookimpl
        def auditft_register_tuners(self, register):
            register.add("lora", object)

    with registered(pm, Clash(), name="clash"):
        with pytest.raises(PluginError) as info:
            pm.tuners  # noqa: B018 - building the registry is the act under test
    message = str(info.value)
    assert "'auditft.default_plugins.tuners.lora'" in message and "'clash'" in message


def test_third_party_kind_is_added_with_its_name(pm):
    class Options(BaseModel):
        depth: int = 1

    class Extra:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add("toxicity", dict, metrics={"toxic_rate": "lower"}, options=Options)

    with registered(pm, Extra(), name="extra"):
        entry = pm.audits.get("toxicity")
        assert entry.plugin == "extra" and entry.metrics == {"toxic_rate": "lower"}
    assert pm.audits.get("toxicity") is None  # unregistered again


def test_invalid_metric_direction_is_a_plugin_error(pm):
    class Bad:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add("bad", dict, metrics={"x": "up"})

    with registered(pm, Bad(), name="bad"), pytest.raises(PluginError, match="'bad'.*'up'"):
        pm.audits  # noqa: B018


def test_hook_that_raises_names_the_plugin(pm):
    class Raises:
        @hookimpl
        def auditft_register_tuners(self, register):
            raise RuntimeError("boom")

    with registered(pm, Raises(), name="raiser"), pytest.raises(PluginError, match="'raiser'.*boom"):
        pm.tuners  # noqa: B018


class _FakeEntryPoint:
    def __init__(self, name: str, module: str) -> None:
        self.name, self.group, self.value, self.module = name, "auditft", module, module

    def load(self):
        return importlib.import_module(self.module)


class _FakeDist:
    def __init__(self, name: str, eps: list[_FakeEntryPoint]) -> None:
        self.metadata = {"name": name}
        self.version = "9.9.9"
        self.entry_points = eps

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def _normalized_name(self) -> str:
        return self.metadata["name"]


@pytest.fixture
def fake_plugins(monkeypatch):
    """Install fake distributions whose entry points name modules created here."""
    good = types.ModuleType("auditft_fake_good")

    @hookimpl
    def auditft_register_audits(register):
        register.add("fake", dict, metrics={"m": "higher"})

    good.auditft_register_audits = auditft_register_audits
    broken = types.ModuleType("auditft_fake_broken")
    typo = types.ModuleType("auditft_fake_typo")

    @hookimpl
    def auditft_register_audit(register):  # misspelled: no such hook
        pass

    typo.auditft_register_audit = auditft_register_audit
    monkeypatch.setitem(sys.modules, "auditft_fake_good", good)
    monkeypatch.setitem(sys.modules, "auditft_fake_typo", typo)
    # the broken one raises on import
    monkeypatch.setitem(sys.modules, "auditft_fake_broken", None)
    dists = {
        "good": _FakeDist("auditft-good", [_FakeEntryPoint("good", "auditft_fake_good")]),
        "broken": _FakeDist("auditft-broken", [_FakeEntryPoint("broken", "auditft_fake_broken")]),
        "typo": _FakeDist("auditft-typo", [_FakeEntryPoint("typo", "auditft_fake_typo")]),
    }
    state = {"active": ["good", "broken"]}

    def distributions():
        return [dists[name] for name in state["active"]]

    def entry_points(group=None):
        eps = [ep for name in state["active"] for ep in dists[name].entry_points]
        return [ep for ep in eps if group in (None, ep.group)]

    monkeypatch.setattr(importlib.metadata, "distributions", distributions)
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return state


def test_entry_point_plugin_is_discovered_and_broken_one_isolated(fake_plugins):
    pm = make_plugin_manager(env={})
    assert pm.audits.get("fake").plugin == "good"
    assert pm.audits.get("fake").version == "9.9.9"
    assert [f.plugin for f in pm.load_failures] == ["broken"]
    assert "ModuleNotFoundError" in pm.load_failures[0].error or "ImportError" in pm.load_failures[0].error
    # the listing shows it, and an unknown kind mentions it
    assert "broken" in pm.failure_for("pii")


def test_strict_plugins_make_a_load_failure_fatal(fake_plugins):
    with pytest.raises(PluginError, match="'broken' failed to load"):
        make_plugin_manager(env={"AUDITFT_STRICT_PLUGINS": "1"})


def test_disable_and_allow_list(fake_plugins):
    pm = make_plugin_manager(env={"AUDITFT_DISABLE_PLUGINS": "broken"})
    assert pm.load_failures == [] and "fake" in pm.audits
    pm = make_plugin_manager(env={"AUDITFT_LOAD_PLUGINS": ""})
    assert pm.load_failures == [] and "fake" not in pm.audits
    assert "lora" in pm.tuners  # built-ins always load


def test_misspelled_hook_is_a_load_failure_and_fatal_when_strict(fake_plugins):
    fake_plugins["active"] = ["typo", "good"]
    pm = make_plugin_manager(env={})
    assert [(f.plugin, f.error) for f in pm.load_failures] == [
        ("typo", "unknown hook 'auditft_register_audit' (misspelled?)")]
    assert not pm.has_plugin("typo") and "fake" in pm.audits
    with pytest.raises(PluginError, match="'typo' implements unknown hook 'auditft_register_audit'"):
        make_plugin_manager(env={"AUDITFT_STRICT_PLUGINS": "1"})


def test_plugins_command_lists_kinds_versions_and_load_errors(fake_plugins):
    from click.testing import CliRunner

    from auditft.cli import cli

    result = CliRunner().invoke(cli, ["plugins", "--format", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    by_name = {p["name"]: p for p in info["plugins"]}
    assert by_name["auditft.default_plugins.tuners.lora"]["tuners"] == ["lora"]
    assert by_name["good"]["version"] == "9.9.9" and by_name["good"]["audits"] == ["fake"]
    assert info["load_errors"][0]["plugin"] == "broken"
    table = CliRunner().invoke(cli, ["plugins", "--format", "table", "--all"])
    assert table.exit_code == 0 and "broken" in table.output and "lora" in table.output
