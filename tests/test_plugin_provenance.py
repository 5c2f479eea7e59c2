"""What the report, the manifest, the model card and ``verify`` show of plugins (issue 22):
the plugins a run used with their declarations (extra weights hashed), apart from those merely
installed; report sections isolated per audit kind; a re-render that says what it cannot
rebuild, and ``verify`` warning about it."""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import json
import logging
import re
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import auditft
from auditft import hookimpl
from auditft.errors import PluginError
from auditft.manifest import sha256_file
from auditft.plugins import make_plugin_manager
from auditft.records import AuditResult, Metric, ReportSection
from auditft.report.build import plugins_used, weight_record
from auditft.report.card import model_card
from auditft.report.html import render_html, sections_for
from auditft.testing import registered, toy_classification_data, write_suite

LORA = "auditft.default_plugins.tuners.lora"
ACCURACY = "auditft.default_plugins.audits.accuracy"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def _schema() -> dict:
    import importlib.resources

    return json.loads(importlib.resources.files("auditft.report").joinpath("report.schema.json").read_text())


# -- 1. report.json, the manifest, the HTML method section and the model card --------------------


def test_report_and_manifest_list_the_plugins_the_run_used_apart_from_the_installed(finished_run):
    _, run_dir = finished_run
    report = _report(run_dir)
    used = {p["name"]: p for p in report["plugins_used"]}
    assert set(used) == {LORA, ACCURACY}  # the suite's tuner and its one audit, nothing else
    assert (used[LORA]["tuners"], used[LORA]["audits"]) == (["lora"], [])
    assert (used[ACCURACY]["tuners"], used[ACCURACY]["audits"]) == ([], ["accuracy"])
    assert used[ACCURACY]["version"] == auditft.__version__
    assert all(p["needs_network"] is False and p["extra_weights"] == [] for p in used.values())
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in manifest["plugins"]] == sorted(used)
    assert report["manifest"]["plugins"] == manifest["plugins"] == report["plugins_used"]
    installed = {p["name"] for p in manifest["plugins_installed"]}
    assert "auditft.default_plugins.audits.fairness" in installed  # installed, not used
    assert not installed & set(used)


def test_each_check_and_result_records_its_plugin(finished_run):
    """Depends on the lead's core changes: checks carry ``plugin`` (gate) and results carry
    ``audits.<kind>.plugin`` (isolation)."""
    _, run_dir = finished_run
    report = _report(run_dir)
    checks = {(c["audit"], c["metric"]): c for c in report["checks"]}
    assert checks[("accuracy", "accuracy")]["plugin"] == ACCURACY
    assert checks[("accuracy", "accuracy")]["plugin_version"] == auditft.__version__
    assert report["audits"]["accuracy"]["plugin"] == ACCURACY
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert f'title="produced by plugin {ACCURACY} {auditft.__version__}"' in html


def test_method_section_and_model_card_list_the_plugins_used(finished_run):
    _, run_dir = finished_run
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    method = html[html.index('<section id="method">'):html.index('<section id="manifest">')]
    assert f'<td class="mono">{LORA}</td>' in method and "tuner lora" in method
    assert f'<td class="mono">{ACCURACY}</td>' in method and "audit accuracy" in method
    assert "auditft.default_plugins.audits.fairness" not in method  # installed only: not in the method
    assert "also installed" in html[html.index('<section id="manifest">'):]
    card = (run_dir / "model_card.md").read_text(encoding="utf-8")
    plugins = card[card.index("## Plugins used"):]
    assert f"- `{ACCURACY}` {auditft.__version__}: audit `accuracy`; network: no; extra weights: none" in plugins
    assert f"`{LORA}`" in plugins and "fairness" not in plugins


class _Weighty:
    @hookimpl
    def auditft_register_audits(self, register):
        register.add("weighty", dict, metrics={"m": "higher"}, needs_network=True,
                     extra_weights=("judge.bin", "file:tok", "hf:org/judge@rev", "judge.bin"))


def test_extra_weights_are_hashed_when_local_and_recorded_as_declared_when_remote(tmp_path, pm, finished_run):
    import jsonschema

    (tmp_path / "judge.bin").write_bytes(b"weights")
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "vocab.json").write_text("{}")
    (folder / "merges.txt").write_text("x")
    with registered(pm, _Weighty(), name="acme-weighty"):
        used = plugins_used(pm.tuners.get("lora"), [pm.audits.get("weighty"), pm.audits.get("accuracy")], tmp_path)
    assert [p["name"] for p in used] == sorted(["acme-weighty", LORA, ACCURACY])
    by = {p["name"]: p for p in used}
    weighty = by["acme-weighty"]
    assert weighty["audits"] == ["weighty"] and weighty["needs_network"] is True and not by[LORA]["needs_network"]
    local, tree, remote = weighty["extra_weights"]  # the repeated ref is listed once
    assert (local["ref"], local["sha256"], local["bytes"]) == ("judge.bin", sha256_file(tmp_path / "judge.bin"), 7)
    assert tree["ref"] == "file:tok" and HEX64.match(tree["sha256"]) and tree["bytes"] == 3
    assert remote == {"ref": "hf:org/judge@rev", "sha256": None, "bytes": None, "note": remote["note"]}
    assert "remote" in remote["note"] and "as declared" in remote["note"]
    (folder / "merges.txt").write_text("y")  # a changed file changes the directory's digest
    assert weight_record("file:tok", tmp_path)["sha256"] != tree["sha256"]
    assert weight_record(str(folder), Path("/nowhere"))["sha256"] == weight_record("tok", tmp_path)["sha256"]
    schema = _schema()
    jsonschema.validate(used, {"$defs": schema["$defs"], "type": "array", "items": {"$ref": "#/$defs/plugin_used"}})

    # what a reader sees of them: the method section and the model card
    _, run_dir = finished_run
    report = {**_report(run_dir), "plugins_used": used}
    html = render_html(report, pm)
    method = html[html.index('<section id="method">'):html.index('<section id="manifest">')]
    assert "acme-weighty" in method and "yes (declared)" in method
    assert local["sha256"] in method and "remote, as declared" in method
    card = model_card(report)
    assert f"`judge.bin` (sha256 `{local['sha256']}`, 7 bytes)" in card
    assert "`hf:org/judge@rev` (remote, as declared)" in card and "network: yes (declared)" in card


# -- 2. report sections isolated per audit kind ---------------------------------------------------


class _BadSection:
    """An installed plugin whose section assumes its audit ran (raises KeyError otherwise)."""

    @hookimpl
    def auditft_register_audits(self, register):
        register.add("badsec", dict, metrics={"m": "higher"})

    @hookimpl
    def auditft_report_sections(self, report):
        return [ReportSection(title="Bad", html=str(report["audits"]["badsec"]["evidence"]["n"]))]


def _with_badsec(report: dict, *, recorded: bool = True) -> dict:
    report = copy.deepcopy(report)
    report["audits"]["badsec"] = {"kind": "badsec", "metrics": {}, "evidence": {}, "notes": [], "error": None,
                                  "seconds": 0.0}
    if recorded:
        report["audits"]["badsec"].update(plugin="badsection", plugin_version="0.1")
    return report


def test_a_failing_section_is_silent_in_reports_of_suites_without_its_audit(finished_run, pm, caplog):
    _, run_dir = finished_run
    report = _report(run_dir)
    plain = [s.title for s in sections_for(report, pm)]
    caplog.set_level(logging.DEBUG)
    with registered(pm, _BadSection(), name="badsection"):
        assert [s.title for s in sections_for(report, pm)] == plain
        html = render_html(report, pm)
    assert "badsection" not in html and "Section from" not in html and "KeyError" not in html
    assert not [r for r in caplog.records if "badsection" in r.getMessage()]  # logged nowhere either


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded-plugin", "older-report-by-kind"])
def test_a_failing_section_is_an_error_box_in_the_report_of_the_suite_that_ran_its_audit(finished_run, pm, recorded):
    _, run_dir = finished_run
    report = _with_badsec(_report(run_dir), recorded=recorded)
    with registered(pm, _BadSection(), name="badsection"):
        entry = pm.audits.get("badsec")
        impl = next(i for i in pm.hook.auditft_report_sections.get_hookimpls() if i.plugin_name == "badsection")
        assert entry.plugin == impl.plugin_name  # how a section hook is mapped to its audits
        html = render_html(report, pm)
    box = html[html.index("Section from badsection failed"):]
    assert 'class="errorbox"' in box and "<strong>badsection</strong>" in box
    assert "KeyError: &#39;n&#39;" in box  # the exception type and message, escaped


def test_a_section_only_plugin_that_fails_still_shows_in_every_report(finished_run, pm):
    class Banner:
        @hookimpl
        def auditft_report_sections(self, report):
            raise RuntimeError("no banner today")

    _, run_dir = finished_run
    with registered(pm, Banner(), name="banner"):
        html = render_html(_report(run_dir), pm)
    assert "Section from banner failed" in html and "RuntimeError: no banner today" in html


def test_a_wrong_section_type_is_an_error_only_where_its_audit_ran(finished_run, pm):
    class Stringly:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add("badsec", dict, metrics={"m": "higher"})

        @hookimpl
        def auditft_report_sections(self, report):
            return ["<p>not a section</p>"]

    _, run_dir = finished_run
    report = _report(run_dir)
    with registered(pm, Stringly(), name="badsection"):
        assert "not a section" not in render_html(report, pm)
        with pytest.raises(PluginError, match="'badsection'.*ReportSection"):
            render_html(_with_badsec(report), pm)


def test_entry_point_plugins_and_builtins_map_sections_to_their_audits(monkeypatch):
    """``impl.plugin_name`` (pluggy) is ``Entry.plugin`` (the registry) for installed plugins
    too: the entry point's name, with its distribution's version."""
    with monkeypatch.context() as patch:
        _install_acme(patch)
        pm = make_plugin_manager(env={"AUDITFT_LOAD_PLUGINS": "acme"})
    assert pm.audits.get("weighty").plugin == "acme" and pm.audits.get("weighty").version == "9.9.9"
    owners = {i.plugin_name for i in pm.hook.auditft_report_sections.get_hookimpls()}
    assert "acme" in owners
    for name in owners:  # every built-in with a section provides an audit under the same name
        assert any(e.plugin == name for e in pm.audits), name


# -- 3. re-rendering says what it cannot rebuild ---------------------------------------------------


def test_rerender_names_the_missing_plugin_of_an_audit(finished_run, pm):
    _, run_dir = finished_run
    report = copy.deepcopy(_report(run_dir))
    report["audits"]["calib"] = {"kind": "calib", "plugin": "acme-calibration", "plugin_version": "1.2.0",
                                 "metrics": {}, "evidence": {"bins": 10}, "notes": [], "error": None,
                                 "seconds": 0.0}
    html = render_html(report, pm)
    assert "section of audit calib could not be rebuilt: plugin acme-calibration 1.2.0 is not installed" in html
    assert html.count("could not be rebuilt") == 1  # accuracy's plugin is loaded: no box for it
    # a report from before results recorded their plugin: the kind is not registered at all
    del report["audits"]["calib"]["plugin"]
    html = render_html(report, pm)
    assert "section of audit calib could not be rebuilt: the plugin that produced it is not installed" in html
    report["plugins_used"] = [*report["plugins_used"], {"name": "acme-calibration", "version": "1.2.0", "tuners": [],
                                                        "audits": ["calib"], "needs_network": False, "extra_weights": []}]
    assert "plugin acme-calibration 1.2.0 is not installed" in render_html(report, pm)


def test_rerender_of_a_kind_now_provided_by_another_plugin_names_the_one_that_produced_it(finished_run, pm):
    _, run_dir = finished_run
    report = copy.deepcopy(_report(run_dir))
    report["audits"]["accuracy"]["plugin"] = "acme-accuracy"
    report["audits"]["accuracy"]["plugin_version"] = "2.0"
    assert "section of audit accuracy could not be rebuilt: plugin acme-accuracy 2.0 is not installed" in \
        render_html(report, pm)


def test_a_fresh_report_has_no_rebuild_gap(finished_run):
    _, run_dir = finished_run
    assert "could not be rebuilt" not in (run_dir / "report.html").read_text(encoding="utf-8")


# -- 4. an installed plugin, used, then uninstalled: report, manifest, verify ----------------------


def _install_acme(patch: pytest.MonkeyPatch) -> None:
    """A fake installed distribution ``auditft-acme`` 9.9.9, entry point ``acme``."""
    module = types.ModuleType("auditft_fake_acme")

    class Weighty:
        def __init__(self, options):
            pass

        def run(self, job):
            n = len(job.data.test)
            return AuditResult(kind="weighty", metrics={"m": Metric(value=1.0, n=n)}, evidence={"n": n})

    @hookimpl
    def auditft_register_audits(register):
        register.add("weighty", Weighty, metrics={"m": "higher"}, extra_weights=("judge.bin", "hf:org/judge@rev"))

    @hookimpl
    def auditft_report_sections(report):
        from auditft.report import render_fragment

        result = report["audits"]["weighty"]  # KeyError in other suites' reports: isolated by core
        return [ReportSection(title="Weighed", anchor="audit-weighty",
                              html=render_fragment("<p>{{ n }} rows weighed</p>", n=result["evidence"]["n"]))]

    module.auditft_register_audits = auditft_register_audits
    module.auditft_report_sections = auditft_report_sections

    class EntryPoint:
        name, group, value = "acme", "auditft", "auditft_fake_acme"

        def load(self):
            return importlib.import_module(self.value)

    class Dist:
        metadata = {"name": "auditft-acme"}
        version = "9.9.9"
        entry_points = [EntryPoint()]
        name = _normalized_name = "auditft-acme"

    patch.setitem(sys.modules, "auditft_fake_acme", module)
    patch.setattr(importlib.metadata, "distributions", lambda: [Dist()])
    patch.setattr(importlib.metadata, "entry_points",
                  lambda group=None: [ep for ep in Dist.entry_points if group in (None, ep.group)])


def test_an_installed_plugin_is_recorded_then_its_absence_is_said_by_report_and_verify(tmp_path, tiny_model_dir,
                                                                                       monkeypatch):
    from auditft.cli import cli

    with monkeypatch.context() as patch:  # installed only while the manager is built
        _install_acme(patch)
        pm = make_plugin_manager(env={"AUDITFT_LOAD_PLUGINS": "acme"})
    toy_classification_data(tmp_path)
    (tmp_path / "judge.bin").write_bytes(b"judge weights")
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir, name="weighed", audits=[
        {"kind": "weighty", "gates": [{"metric": "m", "min": 0.5, "rationale": "toy"}]}])
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "reports"), "--author", "a"],
                                obj={"pm": pm})
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    assert (run_dir / "report.json").exists(), result.output
    report = _report(run_dir)
    acme = next(p for p in report["plugins_used"] if p["name"] == "acme")
    assert acme["version"] == "9.9.9" and acme["audits"] == ["weighty"]
    judge = {w["ref"]: w for w in acme["extra_weights"]}
    assert judge["judge.bin"]["sha256"] == sha256_file(tmp_path / "judge.bin")  # relative to the suite's folder
    assert judge["hf:org/judge@rev"]["sha256"] is None
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert next(p for p in manifest["plugins"] if p["name"] == "acme")["extra_weights"] == acme["extra_weights"]
    assert "rows weighed" in (run_dir / "report.html").read_text(encoding="utf-8")  # its section, while installed

    # uninstalled: verify still passes, but warns; the re-render says what it cannot rebuild
    gone = make_plugin_manager(entry_points=False, env={})
    verified = CliRunner().invoke(cli, ["verify", str(run_dir)], obj={"pm": gone})
    assert verified.exit_code == 0, verified.output
    assert "warning: " in verified.stderr and "plugin acme 9.9.9 is not installed" in verified.stderr
    assert "intact" in verified.stdout and "warning" not in verified.stdout
    rendered = CliRunner().invoke(cli, ["report", str(run_dir)], obj={"pm": gone})
    assert rendered.exit_code == 0, rendered.output
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "section of audit weighty could not be rebuilt: plugin acme 9.9.9 is not installed" in html
    assert "rows weighed" not in html
    # with the plugin loaded again, verify has nothing to warn about
    again = CliRunner().invoke(cli, ["verify", str(run_dir)], obj={"pm": pm})
    assert again.exit_code == 0 and "warning" not in again.stderr, again.output
