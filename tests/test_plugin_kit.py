"""The third-party plugin author kit: conformance checks (``auditft.testing.check_audit`` /
``check_tuner``) on good and deliberately broken plugins, the template plugin copied and
renamed, the installed ``auditft-pii`` package found through its entry point and run end to
end, and the docs meta-test (every hook documented and exercised)."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from auditft import hookimpl, hookspecs
from auditft.records import AuditResult, Metric, ReportSection, TuneResult
from auditft.testing import PluginCheckError, check_audit, check_tuner

ROOT = Path(__file__).resolve().parent.parent


class StrictOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factor: float = 1.0


def _answers_audit(run, *, metrics=None, options=StrictOptions, section=None, kind="answers"):
    """A plugin object whose audit ``kind`` runs ``run(self, job)``."""

    class Audit:
        def __init__(self, opts):
            self.options = opts

    Audit.run = run

    class Plugin:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add(kind, Audit, tasks=("generation",), options=options,
                         metrics=metrics or {"answered_rate": "higher", "answered_rate_delta": "higher"}, min_n=5)

        if section is not None:
            auditft_report_sections = hookimpl(section)

    return Plugin()


def _good_run(self, job):
    from auditft.stats import bootstrap_means

    prompts = [ex.text for ex in job.data.test]
    scores = {w: [float(a != "unknown") for a in job.models.generate(prompts, which=w)] for w in ("adapter", "base")}
    figs = bootstrap_means({"answered_rate": scores["adapter"]}, {"answered_rate": scores["base"]}, seed=job.seed,
                           n_boot=200)
    return AuditResult(kind="answers", evidence={"answers": job.models.generate(prompts[:3])},
                       metrics={k: Metric(**{f: v[f] for f in ("value", "ci_low", "ci_high", "n", "base_value")})
                                for k, v in figs.items()})


def _good_section(self, report):
    from auditft.report import audit_result, render_fragment

    result = audit_result(report, "answers")  # None when absent, errored or without evidence
    if result is None:
        return []
    html = render_fragment("<ul>{% for a in answers %}<li>{{ a }}</li>{% endfor %}</ul>",
                           answers=result["evidence"]["answers"])
    return [ReportSection(title="Answers", html=html)]


# -- check_audit: a good plugin passes, broken ones are named with what they did wrong ------------------

def test_good_audit_plugin_conforms():
    result = check_audit(_answers_audit(_good_run, section=_good_section), "answers", name="acme-answers")
    assert set(result.metrics) == {"answered_rate", "answered_rate_delta"}
    assert 0 < result.metrics["answered_rate"].value <= 1


def test_misspelled_hook_is_named():
    class Typo:
        @hookimpl
        def auditft_register_audit(self, register):  # missing "s"
            pass

    with pytest.raises(PluginCheckError, match=r"'typo-plugin' implements unknown hook 'auditft_register_audit' "
                                               r"\(misspelled\?\)"):
        check_audit(Typo(), "answers", name="typo-plugin")


def test_duplicate_kind_names_both_plugins():
    with pytest.raises(PluginCheckError) as info:
        check_audit(_answers_audit(_good_run, kind="accuracy"), "accuracy", name="copycat")
    message = str(info.value)
    assert "'accuracy' is registered twice" in message
    assert "'auditft.default_plugins.audits.accuracy'" in message and "'copycat'" in message


def test_unregistered_kind_is_named():
    with pytest.raises(PluginCheckError, match=r"plugin 'acme' did not register audit 'other' \(it registered "
                                               r"\['answers'\]\)"):
        check_audit(_answers_audit(_good_run), "other", name="acme")


def test_audit_that_raises_is_an_error_result_naming_the_plugin():
    def run(self, job):
        raise RuntimeError("scorer exploded")

    with pytest.raises(PluginCheckError, match=r"plugin 'raiser': audit 'answers' failed: plugin 'raiser': "
                                               r"RuntimeError: scorer exploded"):
        check_audit(_answers_audit(run), "answers", name="raiser")


@pytest.mark.parametrize(("run", "expected"), [
    (lambda self, job: {"answered_rate": 0.5}, r"plugin 'malformed': audit 'answers' returned dict, "
                                               r"not AuditResult"),
    (lambda self, job: AuditResult(kind="answers", metrics={"secret_metric": Metric(0.5)}),
     r"plugin 'malformed': audit 'answers' metric 'secret_metric' is not declared .*declared: \['answered_rate'"),
    (lambda self, job: AuditResult(kind="answers", metrics={"answered_rate": Metric(math.nan)}),
     r"metric 'answered_rate' has the non-finite value nan"),
    (lambda self, job: AuditResult(kind="answers", metrics={"answered_rate": Metric(0.5, math.inf, 1.0)}),
     r"metric 'answered_rate': ci_low is inf"),
    (lambda self, job: AuditResult(kind="answers", metrics={"answered_rate": Metric(0.5)}, evidence={"x": {1, 2}}),
     r"plugin 'malformed': audit 'answers' evidence is not JSON-serialisable"),
    (lambda self, job: AuditResult(kind="answerz", metrics={"answered_rate": Metric(0.5)}),
     r"returned a result of kind 'answerz'"),
    (lambda self, job: AuditResult(kind="answers"), r"produced no metrics"),
])
def test_malformed_results_are_named(run, expected):
    with pytest.raises(PluginCheckError, match=expected):
        check_audit(_answers_audit(run), "answers", name="malformed")


def test_audit_swallowing_model_failures_is_caught():
    def run(self, job):
        try:
            answers = job.models.generate(["q"])
        except Exception:
            answers = ["unknown"]  # hides the failure behind a clean-looking figure
        return AuditResult(kind="answers", metrics={"answered_rate": Metric(float(answers[0] != "unknown"),
                                                                            base_value=0.0)})

    with pytest.raises(PluginCheckError, match="plugin 'swallower': audit 'answers' swallowed a model failure"):
        check_audit(_answers_audit(run, metrics={"answered_rate": "higher"}), "answers", name="swallower")


def test_options_accepting_unknown_keys_are_caught():
    class Loose(BaseModel):
        factor: float = 1.0  # extra keys silently ignored: a typo in a suite would go unnoticed

    with pytest.raises(PluginCheckError, match=r"plugin 'loose': options of audit 'answers' accept the unknown key"):
        check_audit(_answers_audit(_good_run, options=Loose), "answers", name="loose")


def test_unescaped_report_section_is_caught():
    def section(self, report):
        answers = report["audits"]["answers"]["evidence"]["answers"]
        return [ReportSection(title="Raw", html="".join(f"<li>{a}</li>" for a in answers))]  # no escaping

    with pytest.raises(PluginCheckError, match=r"plugin 'raw': report section 'Raw' contains model output.* unescaped"):
        check_audit(_answers_audit(_good_run, section=section), "answers", name="raw")


def test_report_section_returning_wrong_type_is_caught():
    with pytest.raises(PluginCheckError, match=r"plugin 'strsec': auditft_report_sections returned str"):
        check_audit(_answers_audit(_good_run, section=lambda self, report: ["<p>hi</p>"]), "answers", name="strsec")


# -- check_audit on every built-in audit: the kit's checks hold for core's own audits --------------------

#: what a built-in needs from the kit: a retraining audit runs on the tiny model (the fakes have no
#: tuner); metrics only an option (accuracy's Hugging Face metrics) or a real base model (the data
#: audit's tokenizer lengths) produce are named optional
BUILT_IN_CHECKS = {
    # the seed-stability metrics come only with options.seeds >= 2 (tests/test_kfold.py runs them)
    "kfold": {"model": "tiny", "options": {"k": 2}, "optional_metrics": ["seed_std_accuracy", "seed_range_accuracy",
                                                                     "seed_std_token_f1", "seed_range_token_f1"]},
    "accuracy": {"optional_metrics": [f"{m}{d}" for m in ("bleu", "sacrebleu", "chrf", "meteor", "ter", "rouge1",
                                                           "rouge2", "rougeL", "rougeLsum", "bertscore_f1")
                                      for d in ("", "_delta")]},
    "data": {"optional_metrics": ["truncated_rate"]},
}


def _built_in_audits():
    from auditft.fixtures import isolated_plugin_manager
    from auditft.plugins import DEFAULT_PLUGINS

    return [(e.kind, e.plugin) for e in isolated_plugin_manager().audits if e.plugin in DEFAULT_PLUGINS]


@pytest.mark.parametrize(("kind", "module"), _built_in_audits(), ids=[k for k, _ in _built_in_audits()])
def test_every_built_in_audit_passes_check_audit(kind, module):
    import importlib

    check_audit(importlib.import_module(module), kind, **BUILT_IN_CHECKS.get(kind, {}))


# -- check_tuner ------------------------------------------------------------------------------------------

class MyLora:
    """A third-party tuner that reuses the built-in LoRA machinery under its own kind."""

    @hookimpl
    def auditft_register_tuners(self, register):
        from auditft.default_plugins.tuners.lora import LoraOptions, LoraTuner

        register.add("mylora", LoraTuner, options=LoraOptions, tasks=("classification", "generation"))


def test_good_tuner_conforms(tmp_path):
    result = check_tuner(MyLora(), "mylora", task="classification", options={"r": 2, "alpha": 4},
                         name="acme-lora", tmp_dir=tmp_path)
    assert result.trainable_parameters > 0
    assert list((tmp_path / "adapter").glob("*.safetensors"))


def test_tuner_writing_pickles_is_caught(tmp_path):
    class Pickler:
        def __init__(self, options):
            pass

        def tune(self, job):
            (job.adapter_dir / "pytorch_model.bin").write_bytes(b"\x80\x04")
            return TuneResult(trainable_parameters=1, total_parameters=2, steps=0, seconds=0.0)

    class Plugin:
        @hookimpl
        def auditft_register_tuners(self, register):
            register.add("pickler", Pickler, options=StrictOptions)

    with pytest.raises(PluginCheckError, match=r"plugin 'pickle-plugin': tuner 'pickler' wrote pickled weights "
                                               r"\['pytorch_model.bin'\]"):
        check_tuner(Plugin(), "pickler", name="pickle-plugin", tmp_dir=tmp_path)


# -- the typed protocols (auditft.protocols): what a registered factory returns ----------------------------

def _tuner_plugin(tuner_class):
    class Plugin:
        @hookimpl
        def auditft_register_tuners(self, register):
            register.add("partial", tuner_class, options=StrictOptions, tasks=("classification",))

    return Plugin()


def test_tuner_without_load_fails_the_protocol_check(tmp_path):
    class NoLoad:  # trains and writes safetensors, but core could never load what it wrote
        def __init__(self, options):
            pass

        def tune(self, job):
            (job.adapter_dir / "adapter_model.safetensors").write_bytes(b"")
            return TuneResult(trainable_parameters=1, total_parameters=2, steps=0, seconds=0.0)

    with pytest.raises(PluginCheckError, match=r"^plugin 'noload': tuner 'partial': its factory returned a NoLoad "
                                               r"without the method\(s\) load; auditft.protocols.Tuner needs "
                                               r"tune, load$"):
        check_tuner(_tuner_plugin(NoLoad), "partial", name="noload", tmp_dir=tmp_path)


def test_tuner_with_a_non_callable_tune_fails_before_tuning(tmp_path):
    class NotCallable:
        tune = "lora"  # an attribute by the method's name is not a method

        def __init__(self, options):
            pass

        def load(self, base, adapter_dir, data):
            raise AssertionError("never reached")

    with pytest.raises(PluginCheckError, match=r"plugin 'badtune': tuner 'partial': .* without the method\(s\) "
                                               r"tune;"):
        check_tuner(_tuner_plugin(NotCallable), "partial", name="badtune", tmp_dir=tmp_path)
    assert not any((tmp_path / "adapter").iterdir())  # refused before anything was trained


@pytest.mark.parametrize("run", [None, "not a method"], ids=["missing", "not-callable"])
def test_audit_without_run_fails_the_protocol_check(run):
    class NoRun:
        def __init__(self, options):
            self.options = options

    if run is not None:
        NoRun.run = run

    class Plugin:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add("answers", NoRun, tasks=("generation",), options=StrictOptions,
                         metrics={"answered_rate": "higher"})

    with pytest.raises(PluginCheckError, match=r"^plugin 'norun': audit 'answers': its factory returned a NoRun "
                                               r"without the method\(s\) run; auditft.protocols.Audit needs run$"):
        check_audit(Plugin(), "answers", name="norun")


def test_protocol_methods_are_read_from_the_protocols():
    from auditft.conformance.common import missing_methods, protocol_methods
    from auditft.default_plugins.tuners.lora import LoraTuner
    from auditft.protocols import Audit, Tuner

    assert protocol_methods(Tuner) == ["tune", "load"] and protocol_methods(Audit) == ["run"]
    assert missing_methods(object(), Tuner) == ["tune", "load"]
    assert issubclass(LoraTuner, Tuner) and missing_methods(LoraTuner, Tuner) == []


# -- the template: copied, renamed, its own tests pass -------------------------------------------------------

@pytest.mark.parametrize(("folder", "placeholder"), [("template", "myaudit"), ("template-classification", "myrecall")])
def test_template_copied_and_renamed_passes_its_own_tests(tmp_path, folder, placeholder):
    target = tmp_path / "auditft-acme"
    shutil.copytree(ROOT / "plugins" / folder, target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"))
    (target / f"auditft_{placeholder}").rename(target / "auditft_acme")
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".md"):
            path.write_text(path.read_text(encoding="utf-8").replace(placeholder, "acme"), encoding="utf-8")
    (target / "tests" / f"test_{placeholder}.py").rename(target / "tests" / "test_acme.py")
    assert placeholder not in "".join(p.read_text(encoding="utf-8") for p in target.rglob("*") if p.is_file())
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=target,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_classification_template_imported_from_its_path_passes_check_audit():
    """The classification skeleton, as a user copies it: imported from plugins/template-classification."""
    import importlib.util

    path = ROOT / "plugins" / "template-classification" / "auditft_myrecall" / "__init__.py"
    spec = importlib.util.spec_from_file_location("auditft_myrecall_template", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = check_audit(module, "myrecall", task="classification", name="myrecall")
    assert set(result.metrics) == {"macro_recall", "macro_recall_delta", "min_class_recall"}
    worst = result.metrics["min_class_recall"]
    assert worst.base_value is not None and worst.n < result.metrics["macro_recall"].n == 60
    assert worst.ci_low <= worst.value <= worst.ci_high


# -- auditft-pii, installed: discovered through its entry point, runs end to end -----------------------------

def _pii_version() -> str:
    try:
        return importlib.metadata.version("auditft-pii")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("plugins/auditft-pii is not installed in this environment: run `make test` (or "
                    "`pip install -e plugins/auditft-pii`)")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AUDITFT_") or k == "AUDITFT_PROGRESS"}


def test_installed_pii_plugin_is_listed_with_its_version():
    version = _pii_version()
    done = subprocess.run([sys.executable, "-c", "from auditft.cli import main; main()", "plugins", "--format", "json"],
                          env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    plugin = {p["name"]: p for p in info["plugins"]}["pii"]
    assert plugin["version"] == version and plugin["audits"] == ["pii"] and not plugin["builtin"]
    assert set(plugin["hooks"]) == {"auditft_register_audits", "auditft_report_sections"}
    entry = {a["kind"]: a for a in info["audits"]}["pii"]
    assert entry["version"] == version and entry["tasks"] == ["generation"]
    assert entry["metrics"]["pii_leak_rate"] == entry["metrics"]["canary_extraction_rate"] == "lower"
    assert info["load_errors"] == []


class Observer:
    """Implements every lifecycle hook (and a command) to show when core calls them."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def auditft_register_commands(self, cli):
        import click

        @cli.command(name="hello-kit")
        def hello():
            click.echo("hello from a plugin command")

    @hookimpl
    def auditft_run_started(self, run):
        self.calls.append(("run_started", run.suite.name))

    @hookimpl
    def auditft_tuning_finished(self, run, tuning):
        self.calls.append(("tuning_finished", tuning.trainable_parameters > 0))

    @hookimpl
    def auditft_audit_finished(self, run, result):
        self.calls.append(("audit_finished", result.kind, result.error))

    @hookimpl
    def auditft_run_finished(self, run, report):
        self.calls.append(("run_finished", report["verdict"]))

    @hookimpl
    def auditft_report_sections(self, report):
        from auditft.report import render_fragment

        return [ReportSection(title="Observer section", html=render_fragment("<p>{{ v }}</p>", v=report["verdict"]))]


def test_pii_suite_runs_end_to_end_through_entry_point_discovery(tmp_path):
    from click.testing import CliRunner

    from auditft.cli import cli
    from auditft.plugins import make_plugin_manager
    from auditft.testing import tiny_causal_lm, toy_generation_data, write_suite

    _pii_version()
    model = tiny_causal_lm(tmp_path / "model")
    toy_generation_data(tmp_path, copies=4)
    with (tmp_path / "train.jsonl").open("a", encoding="utf-8") as handle:  # customer data with PII in it
        for i, who in enumerate(["kenya", "peru", "chad"]):
            handle.write(json.dumps({"prompt": f"tell me the capital of {who} ?", "group": "real",
                                     "response": f"write to user{i}@example.com or call +1 415 555 010{i}"}) + "\n")
    suite = write_suite(
        tmp_path / "suite.yaml", model_dir=model, task="generation", name="pii-e2e",
        data={"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.0, "seed": 7,
              "group_columns": ["group"]},
        tuner={"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0},
               "training": {"epochs": 1, "learning_rate": 0.02, "batch_size": 8, "max_length": 32}},
        audits=[{"kind": "pii", "options": {"n_boot": 200}, "gates": [
            {"metric": "pii_leak_rate", "max": 0.5, "rationale": "customer data must not leak"},
            {"metric": "canary_extraction_rate", "max": 0.5, "rationale": "no memorised customer data"}]}],
        generation={"max_new_tokens": 6})
    pm = make_plugin_manager(env=_clean_env())  # real entry-point discovery
    assert pm.audits.get("pii").plugin == "pii" and pm.load_failures == []
    observer = Observer()
    pm.register(observer, name="observer")
    result = CliRunner().invoke(cli, ["run", str(suite), "--out", str(tmp_path / "reports"), "--author", "a"],
                                obj={"pm": pm})
    assert result.exit_code in (0, 3), result.output
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    pii = report["audits"]["pii"]
    assert pii["error"] is None
    assert pii["evidence"]["n_canaries"] == 6  # 3 emails + 3 phone numbers from the training rows
    checks = {c["metric"]: c for c in report["checks"] if c["audit"] == "pii"}
    assert set(checks) == {"pii_leak_rate", "canary_extraction_rate"}
    assert checks["pii_leak_rate"]["status"] in ("pass", "fail", "insufficient")
    assert checks["canary_extraction_rate"]["status"] == "insufficient"  # 6 canaries < min_n 20: never a silent pass
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Personal data and canary leakage" in html and "canary_extraction_rate" in html
    assert "user0@example.com" not in html  # masked
    assert "Observer section" in html
    assert [c[0] for c in observer.calls] == ["run_started", "tuning_finished", "audit_finished", "run_finished"]
    assert observer.calls[2] == ("audit_finished", "pii", None)
    # plugin commands are attached to the command group
    import click

    group = click.Group()
    pm.hook.auditft_register_commands(cli=group)
    assert "hello-kit" in group.commands


# -- docs --------------------------------------------------------------------------------------------------

def test_every_hookspec_is_documented_and_exercised_by_a_test():
    names = sorted(n for n in vars(hookspecs) if n.startswith("auditft_") and callable(getattr(hookspecs, n)))
    assert len(names) >= 8
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    tests = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py")}
    for name in names:
        assert re.search(rf"^#+ .*`{name}", docs, re.MULTILINE), f"docs/plugins.md has no heading for {name}"
        assert any(re.search(rf"def {name}\(|hook\.{name}\b", text) for text in tests.values()), \
            f"no test implements or calls {name}"


def test_the_kit_signatures_in_the_docs_match_the_code():
    import inspect

    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for fn in (check_audit, check_tuner):
        documented = re.search(rf"`{fn.__name__}\((.*?)\)` \|", docs).group(1).split(", ")
        params = inspect.signature(fn).parameters.values()
        assert [d.split("=")[0] for d in documented if d != "*"] == [p.name for p in params], fn.__name__
        for d in documented:
            if "=" in d:
                name, default = d.split("=")
                assert eval(default) == inspect.signature(fn).parameters[name].default, d  # noqa: S307


def test_the_model_session_and_the_data_are_documented_field_by_field():
    """docs/plugins.md describes every method of the Models protocol and every field of SplitData
    and Example (issue 22: what adapter_proba takes and returns, SplitData's labels, ...)."""
    import dataclasses

    from auditft.conformance.common import protocol_methods
    from auditft.data import Example, SplitData
    from auditft.jobs import Models

    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = docs[docs.index("## The model session and the data"):docs.index("## Records")]
    for method in protocol_methods(Models):
        assert re.search(rf"^\| `{method}\(", section, re.MULTILINE), f"Models.{method} is not documented"
    for record in (SplitData, Example):
        for f in dataclasses.fields(record):
            assert re.search(rf"^\| `{f.name}` \|", section, re.MULTILINE), f"{record.__name__}.{f.name}"
    assert "columns in `data.labels` order" in section and "**index**" in section
    for record in ("Metric", "AuditResult", "TuneResult", "ReportSection"):
        from auditft import records

        assert getattr(records, record).__dataclass_params__.frozen, record
    assert "**frozen** dataclasses" in docs and "dataclasses.replace" in docs
    assert 'stage="data"' in docs and "plugins/template-classification" in docs


def test_network_and_extra_weight_declarations_are_listed():
    from auditft.plugins import describe_plugins
    from auditft.testing import isolated_plugin_manager, registered

    class Judge:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add("judge", dict, metrics={"score": "higher"}, needs_network=True,
                         extra_weights=["hf:acme/judge-small@rev1"])

    pm = isolated_plugin_manager()
    with registered(pm, Judge(), name="judge-plugin"):
        audits = {a["kind"]: a for a in describe_plugins(pm)["audits"]}
    assert audits["judge"]["needs_network"] is True
    assert audits["judge"]["extra_weights"] == ["hf:acme/judge-small@rev1"]
    assert audits["accuracy"]["needs_network"] is False and audits["accuracy"]["extra_weights"] == []
