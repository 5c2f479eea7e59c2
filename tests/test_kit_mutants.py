"""Mutation tests of the author kit (``auditft.testing.check_audit`` / ``check_tuner``, issue 22).

Two correct minimal audits are defined here: ``recall`` (classification: the share of test rows
the adapter gets right, adapter vs base probe, exact CIs, a per-class / per-group / misses
section) and ``answers`` (generation: the share of prompts answered, adapter vs base). Each
mutant is one of them broken in one way; each is its own test, and the kit must name the
plugin and what is wrong. ``MUTANTS`` lists every kind (the issue's "kit misses" list, the
sys.exit case, and the kinds the kit caught before), the table in the closing note is printed
from it by ``python -m pytest tests/test_kit_mutants.py -k table -s``.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection, TuneResult
from auditft.testing import PluginCheckError, check_audit, check_tuner


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_boot: int = 200


# -- the two correct audits -------------------------------------------------------------------------

class RecallAudit:
    """Classification: hit_rate = share of test rows predicted right; base = the base probe."""

    kind = "recall"
    adapter_split = "test"
    base_split = "test"

    def __init__(self, options):
        self.options = options

    def figures(self, job) -> dict[str, Metric]:
        from auditft.stats import bootstrap_means

        def hits(which, split):
            rows = getattr(job.data, split)
            proba = (job.models.adapter_proba if which == "adapter" else job.models.base_probe_proba)(split)
            return (np.asarray(proba).argmax(axis=1) == np.array([ex.label for ex in rows])).astype(float)

        adapter, base = hits("adapter", self.adapter_split), hits("base", self.base_split)
        if len(adapter) != len(base):  # different splits: the base figure alone
            figures = bootstrap_means({"hit_rate": adapter}, seed=job.seed, n_boot=self.options.n_boot,
                                      proportions=["hit_rate"])
            figures["hit_rate"]["base_value"] = float(base.mean())
            figures["hit_rate_delta"] = {"value": float(adapter.mean() - base.mean()), "n": len(adapter)}
        else:
            figures = bootstrap_means({"hit_rate": adapter}, {"hit_rate": base}, seed=job.seed,
                                      n_boot=self.options.n_boot, proportions=["hit_rate"])
        return {name: Metric.from_figure(f) for name, f in figures.items()}

    def evidence(self, job) -> dict[str, Any]:
        test = job.data.test
        pred = np.asarray(job.models.adapter_proba("test")).argmax(axis=1)
        per_class = []
        for c, label in enumerate(job.data.labels):
            rows = [i for i, ex in enumerate(test) if ex.label == c]
            per_class.append({"label": label, "n": len(rows),
                              "recall": float(np.mean([pred[i] == c for i in rows])) if rows else None})
        groups: dict[str, int] = {}
        for ex in test:
            for value in ex.groups.values():
                groups[value] = groups.get(value, 0) + 1
        misses = [ex.text for ex, p in zip(test, pred) if p != ex.label][:3]
        return {"per_class": per_class, "groups": groups, "misses": misses}

    def run(self, job):
        return AuditResult(kind=self.kind, metrics=self.figures(job), evidence=self.evidence(job))


RECALL_METRICS = {"hit_rate": "higher", "hit_rate_delta": "higher"}
RECALL_SECTION = """
<table>{% for row in ev.per_class %}<tr><td>{{ row.label }}</td><td>{{ fmt(row.recall) }}</td></tr>{% endfor %}</table>
<p>{% for value, n in ev.groups.items() %}{{ value }}: {{ n }}; {% endfor %}</p>
<ul>{% for text in ev.misses %}<li>{{ text }}</li>{% endfor %}</ul>
"""


def recall_section(self, report):
    from auditft.report import audit_result, render_fragment

    result = audit_result(report, "recall")
    if result is None:
        return []
    return [ReportSection(title="Recall", html=render_fragment(RECALL_SECTION, ev=result["evidence"]))]


class AnswersAudit:
    """Generation: answered_rate = share of test prompts not answered "unknown", adapter vs base."""

    kind = "answers"
    split = "test"

    def __init__(self, options):
        self.options = options

    def run(self, job):
        from auditft.stats import bootstrap_means

        prompts = [ex.text for ex in getattr(job.data, self.split)]
        answers = {w: job.models.generate(prompts, which=w) for w in ("adapter", "base")}
        scores = {w: [float(a != "unknown") for a in out] for w, out in answers.items()}
        figures = bootstrap_means({"answered_rate": scores["adapter"]}, {"answered_rate": scores["base"]},
                                  seed=job.seed, n_boot=self.options.n_boot, proportions=["answered_rate"])
        return AuditResult(kind=self.kind, metrics={k: Metric.from_figure(f) for k, f in figures.items()},
                           evidence={"answers": answers["adapter"][:3]})


ANSWERS_METRICS = {"answered_rate": "higher", "answered_rate_delta": "higher"}


def answers_section(self, report):
    from auditft.report import audit_result, render_fragment

    result = audit_result(report, "answers")
    if result is None:
        return []
    html = render_fragment("<ul>{% for a in answers %}<li>{{ a }}</li>{% endfor %}</ul>",
                           answers=result["evidence"]["answers"])
    return [ReportSection(title="Answers", html=html)]


def plugin(audit=RecallAudit, *, section=None, metrics=None, options=Options, kind=None, tasks=None, **add):
    """A plugin object registering ``audit`` (the recall or answers audit, or a mutant of one)."""
    generation = issubclass(audit, AnswersAudit) if isinstance(audit, type) else False
    kind = kind or getattr(audit, "kind", "recall")
    section = section if section is not None else (answers_section if generation else recall_section)

    class Plugin:
        @hookimpl
        def auditft_register_audits(self, register):
            register.add(kind, audit, tasks=tasks or (("generation",) if generation else ("classification",)),
                         options=options,
                         metrics=(ANSWERS_METRICS if generation else RECALL_METRICS) if metrics is None else metrics,
                         min_n=5, **add)

    if section is not False:
        Plugin.auditft_report_sections = hookimpl(section)
    return Plugin()


def test_the_correct_audits_pass():
    recall = check_audit(plugin(), "recall", name="acme")
    assert set(recall.metrics) == set(RECALL_METRICS) and recall.metrics["hit_rate"].base_value is not None
    answers = check_audit(plugin(AnswersAudit), "answers", name="acme")
    assert set(answers.metrics) == set(ANSWERS_METRICS)


# -- the mutants ---------------------------------------------------------------------------------------

def subclass(base, **attrs):
    return type(f"Mutant{base.__name__}", (base,), attrs)


def result_of(make):
    """A recall audit whose ``run`` returns ``make(job, metrics)``."""
    return subclass(RecallAudit, run=lambda self, job: make(job, self.figures(job)))


def replaced(name, **changes):
    """A recall audit whose metric ``name`` has ``changes``."""
    from dataclasses import replace

    return result_of(lambda job, m: AuditResult(kind="recall", metrics={**m, name: replace(m[name], **changes)},
                                                evidence={}))


def section_of(source=None, *, build=None):
    """A recall section hook rendering ``source`` (a Jinja template) or ``build(evidence) -> str``."""

    def section(self, report):
        from auditft.report import audit_result, render_fragment

        result = audit_result(report, "recall")
        if result is None:
            return []
        ev = result["evidence"]
        html = build(ev) if build else render_fragment(source, ev=ev)
        return [ReportSection(title="Recall", html=html)]

    return section


def label_rows(ev):
    return "".join(f"<tr><td>{row['label']}</td><td>{row['recall']}</td></tr>" for row in ev["per_class"])


def group_items(ev):
    return "".join(f"<li>{value}: {n}</li>" for value, n in ev["groups"].items())


def absent_raises(self, report):
    result = report["audits"]["recall"]  # KeyError in any suite that does not run this audit
    if result.get("error"):
        return []
    return recall_section(self, report)


def errored_raises(self, report):
    from auditft.report import render_fragment

    result = report["audits"].get("recall")
    if not result:
        return []
    return [ReportSection(title="Recall", html=render_fragment(RECALL_SECTION, ev=result["evidence"]))]


def errored_unescaped(self, report):
    result = report["audits"].get("recall")
    if result and result.get("error"):
        return [ReportSection(title="Recall failed", html=f"<p class='error'>{result['error']}</p>")]
    return recall_section(self, report)


def exits(code):
    def run(self, job):
        sys.exit(code)

    return subclass(RecallAudit, run=run)


def interrupts(self, job):
    raise KeyboardInterrupt


def hangs(self, job):
    time.sleep(60)


def swallows(self, job):
    try:
        return RecallAudit.run(self, job)
    except Exception:
        return AuditResult(kind="recall", metrics={"hit_rate": Metric(1.0, n=60, base_value=0.5),
                                                    "hit_rate_delta": Metric(0.5, n=60)})


class SelectionGap(RecallAudit):
    """A parity-like figure a constant model satisfies (zero gap), not declared trivial."""

    def run(self, job):
        pred = np.asarray(job.models.adapter_proba("test")).argmax(axis=1)
        base = np.asarray(job.models.base_probe_proba("test")).argmax(axis=1)
        sex = np.array([ex.groups["sex"] for ex in job.data.test])
        first = sex == sex[0]

        def gap(p):
            return float(abs(p[first].mean() - p[~first].mean()))

        return AuditResult(kind="recall", metrics={"selection_gap": Metric(gap(pred), n=len(pred),
                                                                           base_value=gap(base))})


class Loose(BaseModel):
    n_boot: int = 200  # extra keys ignored: a typo in a suite would go unnoticed


class Typo:
    @hookimpl
    def auditft_register_audit(self, register):  # missing "s"
        pass


class NoRun:
    def __init__(self, options):
        self.options = options


@dataclass
class Mutant:
    """One broken plugin: how it is built, how it is checked, what the kit must say."""

    id: str
    what: str
    build: Any
    expected: str
    kind: str = "recall"
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: who catches it since when: "kit" (the kit's new checks, issue 22), "core" (core's audit
    #: isolation, issue 22, which the kit runs the audit through), "before" (caught before issue 22)
    since: str = "kit"


MUTANTS = [
    # -- the "kit misses" list, and the sys.exit case ---------------------------------------------
    Mutant("section-safe-texts", "classification section renders example texts with |safe",
           lambda: plugin(section=section_of(RECALL_SECTION.replace("{{ text }}", "{{ text|safe }}"))),
           r"report section 'Recall' contains example text unescaped"),
    Mutant("section-fstring-labels", "classification section builds its table of labels with f-strings",
           lambda: plugin(section=section_of(build=label_rows)),
           r"report section 'Recall' contains a label name unescaped"),
    Mutant("section-fstring-groups", "classification section writes group values with f-strings",
           lambda: plugin(section=section_of(build=group_items)),
           r"report section 'Recall' contains a group value unescaped"),
    Mutant("section-raises-when-absent", "section hook raises when its audit is not in the report",
           lambda: plugin(section=absent_raises),
           r"auditft_report_sections raised KeyError: 'recall' when audit 'recall' is absent from the report"),
    Mutant("section-raises-when-errored", "section hook raises when its audit has an error",
           lambda: plugin(section=errored_raises),
           r"auditft_report_sections raised \w+Error: .*'per_class' when audit 'recall' has an error"),
    Mutant("section-errored-unescaped", "section shows an errored audit's error text unescaped",
           lambda: plugin(section=errored_unescaped),
           r"report section 'Recall failed' contains an error message unescaped when audit 'recall' has an error"),
    Mutant("ci-excludes-value", "a metric whose CI does not contain its value",
           lambda: plugin(replaced("hit_rate", ci_low=0.0, ci_high=0.01)),
           r"metric 'hit_rate': its 95% CI \[0, 0.01\] does not contain its value"),
    Mutant("declared-never-produced", "a metric declared at registration that the audit never produces",
           lambda: plugin(metrics={**RECALL_METRICS, "worst_group_hit_rate": "higher"}),
           r"declares metric\(s\) \['worst_group_hit_rate'\] in register.add\(metrics=...\) but produced none"),
    Mutant("no-base-figures", "classification: no metric carries a base-model figure",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics={
               k: Metric(v.value, v.ci_low, v.ci_high, v.n) for k, v in m.items()}))),
           r"audit 'recall' gives no base-model figure on the classification task"),
    Mutant("no-base-figures-generation", "generation: the base model is never measured",
           lambda: plugin(subclass(AnswersAudit, run=lambda self, job: AuditResult(kind="answers", metrics={
               "answered_rate": Metric(0.5, 0.4, 0.6, n=len(job.data.test))})),
               metrics={"answered_rate": "higher"}),
           r"audit 'answers' gives no base-model figure on the generation task", "answers"),
    Mutant("scores-train-split", "classification: adapter and base scored on the train split",
           lambda: plugin(subclass(RecallAudit, adapter_split="train", base_split="train",
                                   evidence=lambda self, job: {})),
           r"scored the adapter model with adapter_proba\('train'\) and never on the test split"),
    Mutant("base-on-validation", "classification: the base figure is taken on the validation split",
           lambda: plugin(subclass(RecallAudit, base_split="validation")),
           r"scored the base model with base_probe_proba\('validation'\) and never on the test split"),
    Mutant("generates-on-train-prompts", "generation: answers the training prompts",
           lambda: plugin(subclass(AnswersAudit, split="train")),
           r"scored the adapter model with generate\(\) on train prompts and never on the test split", "answers"),
    Mutant("hangs", "the audit never returns (no default timeout before)",
           lambda: plugin(subclass(RecallAudit, run=hangs)),
           r"audit 'recall' did not finish within 1 s on the kit's toy data", kwargs={"timeout": 1}),
    Mutant("sys-exit-0", "the audit calls sys.exit(0)",
           lambda: plugin(exits(0)), r"audit 'recall' .*sys\.exit\(0\)", since="core"),
    Mutant("sys-exit-2", "the audit calls sys.exit(2)",
           lambda: plugin(exits(2)), r"audit 'recall' .*sys\.exit\(2\)", since="core"),
    Mutant("keyboard-interrupt", "the audit raises KeyboardInterrupt itself",
           lambda: plugin(subclass(RecallAudit, run=interrupts)), r"audit 'recall' .*KeyboardInterrupt",
           since="core"),
    Mutant("section-sys-exit", "the section hook calls sys.exit()",
           lambda: plugin(section=lambda self, report: sys.exit()),
           r"auditft_report_sections raised SystemExit"),
    # -- what the kit caught before ------------------------------------------------------------------------
    Mutant("misspelled-hook", "a misspelled hook name", Typo,
           r"implements unknown hook 'auditft_register_audit' \(misspelled\?\)", since="before"),
    Mutant("duplicate-kind", "registers a built-in's kind", lambda: plugin(kind="accuracy"),
           r"'accuracy' is registered twice", "accuracy", since="before"),
    Mutant("kind-not-registered", "the checked kind is not the registered one", lambda: plugin(kind="recal"),
           r"did not register audit 'recall' \(it registered \['recal'\]\)", since="before"),
    Mutant("task-not-declared", "checked on a task it does not declare", lambda: plugin(),
           r"declares tasks \['classification'\], not 'generation'", kwargs={"task": "generation"}, since="before"),
    Mutant("no-metrics-declared", "declares no gate metrics", lambda: plugin(metrics={}), r"declares no gate metrics",
           since="before"),
    Mutant("options-accept-unknown", "options model ignores unknown keys", lambda: plugin(options=Loose),
           r"accept the unknown key", since="before"),
    Mutant("factory-without-run", "factory returns an object without run()", lambda: plugin(NoRun),
           r"its factory returned a NoRun without the method\(s\) run", since="before"),
    Mutant("run-raises", "run raises", lambda: plugin(subclass(RecallAudit, run=lambda self, job: 1 / 0)),
           r"audit 'recall' failed: plugin 'acme': ZeroDivisionError", since="before"),
    Mutant("returns-dict", "run returns a dict", lambda: plugin(subclass(RecallAudit, run=lambda self, job: {})),
           r"returned dict, not AuditResult", since="before"),
    Mutant("wrong-kind", "result of another kind",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recal", metrics=m))),
           r"returned a result of kind 'recal'", since="before"),
    Mutant("no-metrics-produced", "result without metrics",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall"))), r"produced no metrics",
           since="before"),
    Mutant("undeclared-metric", "a metric that is not declared",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics={**m, "secret": m["hit_rate"]}))),
           r"metric 'secret' is not declared", since="before"),
    Mutant("not-a-metric", "a metric value that is not a Metric",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics={**m, "hit_rate": 0.5}))),
           r"metric 'hit_rate' is a float, not auditft.records.Metric", since="before"),
    Mutant("nan-value", "a NaN value", lambda: plugin(replaced("hit_rate", value=math.nan)),
           r"metric 'hit_rate' has the non-finite value nan", since="before"),
    Mutant("inf-ci", "an infinite CI end", lambda: plugin(replaced("hit_rate", ci_high=math.inf)),
           r"metric 'hit_rate': ci_high is inf", since="before"),
    Mutant("ci-reversed", "ci_low above ci_high", lambda: plugin(replaced("hit_rate", ci_low=0.9, ci_high=0.1)),
           r"ci_low 0.9 is above ci_high 0.1", since="before"),
    Mutant("one-ci-end", "only one CI end", lambda: plugin(replaced("hit_rate", ci_high=None)),
           r"give both CI ends or neither", since="before"),
    Mutant("negative-n", "a negative sample size", lambda: plugin(replaced("hit_rate", n=-1)),
           r"n is -1; use a non-negative int or None", since="before"),
    Mutant("evidence-not-json", "evidence that is not JSON",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics=m, evidence={"x": {1}}))),
           r"evidence is not JSON-serialisable", since="before"),
    Mutant("bad-rows-name", "row findings under a bad name",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics=m, rows={"bad": [1]}))),
           r"rows name 'bad' must be an identifier ending in '_rows'", since="before"),
    Mutant("notes-not-strings", "notes that are not strings",
           lambda: plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics=m, notes=[1]))),
           r"notes must be strings", since="before"),
    Mutant("swallows-model-failure", "hides a model failure behind a clean figure",
           lambda: plugin(subclass(RecallAudit, run=swallows)), r"swallowed a model failure", since="before"),
    Mutant("section-unescaped-answers", "generation section with raw model output",
           lambda: plugin(AnswersAudit, section=lambda self, report: [ReportSection(title="Raw", html="".join(
               f"<li>{a}</li>" for a in (report["audits"].get("answers") or {}).get("evidence", {}).get("answers", [])
           ))]), r"report section 'Raw' contains model output.* unescaped", "answers", since="before"),
    Mutant("section-wrong-type", "section hook returns strings",
           lambda: plugin(section=lambda self, report: ["<p>recall</p>"]),
           r"auditft_report_sections returned str", since="before"),
    Mutant("constant-model-passes", "a metric a constant model satisfies, not declared trivial",
           lambda: plugin(SelectionGap, metrics={"selection_gap": "lower"}),
           r"lets a constant model pass .*selection_gap.*trivial_metrics", since="before"),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_the_kit_catches_the_mutant(mutant):
    with pytest.raises(PluginCheckError, match=mutant.expected) as info:
        check_audit(mutant.build(), mutant.kind, name="acme", **mutant.kwargs)
    assert "'acme'" in str(info.value)  # the message names the plugin


def test_the_mutant_table():
    """The closing note's table (``-s`` shows it): every mutant kind and the test that catches it."""
    rows = [f"| {m.id} | {m.what} | {m.since} | test_the_kit_catches_the_mutant[{m.id}] |" for m in MUTANTS]
    print("\n| mutant | what is broken | caught by | test |\n|---|---|---|---|\n" + "\n".join(rows))
    counts = {since: sum(m.since == since for m in MUTANTS) for since in ("kit", "core", "before")}
    print(f"{len(MUTANTS)} mutant kinds, all caught: {counts['kit']} by the kit's new checks, {counts['core']} by "
          f"core's isolation (new), {counts['before']} caught before")
    assert len({m.id for m in MUTANTS}) == len(MUTANTS) >= 32
    assert set(counts) == {m.since for m in MUTANTS}


# -- what the new checks must not do -----------------------------------------------------------------------

def test_a_real_ctrl_c_still_stops_the_check():
    """The exit guard turns a KeyboardInterrupt the plugin raises into a failure, never a real
    SIGINT: the author's Ctrl-C still stops the test run."""

    def run(self, job):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)

    with pytest.raises(KeyboardInterrupt):
        check_audit(plugin(subclass(RecallAudit, run=run)), "recall", name="acme")


def test_optional_metrics_excuse_a_metric_only_other_options_produce():
    mutant = plugin(metrics={**RECALL_METRICS, "worst_group_hit_rate": "higher"})
    check_audit(mutant, "recall", name="acme", optional_metrics=["worst_group_hit_rate"])
    with pytest.raises(PluginCheckError, match=r"optional_metrics \['nope'\] are not declared"):
        check_audit(mutant, "recall", name="acme", optional_metrics=["nope"])


def test_base_figures_false_is_the_documented_opt_out():
    no_base = plugin(result_of(lambda job, m: AuditResult(kind="recall", metrics={
        k: Metric(v.value, v.ci_low, v.ci_high, v.n) for k, v in m.items()})))
    check_audit(no_base, "recall", name="acme", base_figures=False)


def test_scores_train_is_the_opt_out_for_an_audit_that_measures_training_rows_on_purpose():
    memorisation = plugin(subclass(AnswersAudit, split="train"))
    with pytest.raises(PluginCheckError, match=r"generate\(\) on train prompts .*scores_train=True"):
        check_audit(memorisation, "answers", name="acme")
    check_audit(memorisation, "answers", name="acme", scores_train=True)


def test_the_fake_data_carry_markup_unless_the_options_name_a_label(tmp_path):
    seen = {}

    class Named(BaseModel):
        model_config = ConfigDict(extra="forbid")

        positive_label: str = "urgent"
        n_boot: int = 200

    class Audit(RecallAudit):
        def run(self, job):
            seen.update(labels=list(job.data.labels), columns=list(job.data.group_columns),
                        text=job.data.test[0].text, site=job.data.test[0].groups["site"])
            if self.options.positive_label not in job.data.labels:
                raise ValueError(f"positive_label {self.options.positive_label!r} is not a label")
            return RecallAudit.run(self, job)

    check_audit(plugin(Audit, options=Named), "recall", name="acme")
    assert seen["labels"] == ["routine", "urgent"]  # named by the options: left as they are
    assert seen["columns"] == ["sex", "band", "site"] and "<img src=x onerror=" in seen["site"]
    assert seen["text"].endswith("<script>alert('auditft-text')</script>")
    check_audit(plugin(), "recall", name="acme")
    from auditft.conformance import HOSTILE_LABEL, FakeModelSession
    from auditft.conformance.fakes import fake_job

    assert all(HOSTILE_LABEL in label for label in
               fake_job("classification", Options(), tmp_path, FakeModelSession).data.labels)


def test_a_metric_produced_on_one_declared_task_only_is_not_missing():
    """An audit for both tasks may produce a task's subset of its metrics (like the built-in accuracy)."""

    class Both(RecallAudit):
        split = "test"

        def run(self, job):
            if job.task == "generation":
                return AnswersAudit.run(self, job)
            return RecallAudit.run(self, job)

    both = plugin(Both, tasks=("classification", "generation"), metrics={**RECALL_METRICS, **ANSWERS_METRICS},
                  section=False)
    check_audit(both, "recall", name="acme")


def test_the_kind_of_a_both_task_audit_is_named_with_the_other_task():
    class Both(RecallAudit):
        def run(self, job):
            if job.task == "generation":
                return AuditResult(kind="recall", metrics={"hit_rate": Metric(math.nan)})
            return RecallAudit.run(self, job)

    with pytest.raises(PluginCheckError, match=r"non-finite value nan; .* \(on the generation task, which the "
                                               r"audit declares too\)"):
        check_audit(plugin(Both, tasks=("classification", "generation")), "recall", name="acme")


def test_an_audit_that_never_calls_the_model_has_no_failure_to_swallow():
    class DataOnly(RecallAudit):
        def run(self, job):
            n = len(job.data.test)
            return AuditResult(kind="recall", metrics={"hit_rate": Metric(0.5, 0.3, 0.7, n=n, base_value=0.5),
                                                        "hit_rate_delta": Metric(0.0, -0.1, 0.1, n=n)})

    check_audit(plugin(DataOnly), "recall", name="acme", optional_metrics=(), timeout=60)


# -- check_tuner: the default timeout and the exit guard ---------------------------------------------------

def _tuner_plugin(tune):
    class Tuner:
        def __init__(self, options):
            pass

        def load(self, base, adapter_dir, data):
            raise AssertionError("never reached")

    Tuner.tune = tune

    class Plugin:
        @hookimpl
        def auditft_register_tuners(self, register):
            register.add("slow", Tuner, options=Options, tasks=("classification",))

    return Plugin()


def test_check_tuner_fails_a_hanging_tuner(tmp_path):
    def tune(self, job):
        time.sleep(60)
        return TuneResult(trainable_parameters=1, total_parameters=2, steps=0, seconds=0.0)

    started = time.perf_counter()
    with pytest.raises(PluginCheckError, match=r"plugin 'acme': tuner 'slow' did not finish tune within 1 s"):
        check_tuner(_tuner_plugin(tune), "slow", name="acme", tmp_dir=tmp_path, timeout=1)
    assert time.perf_counter() - started < 30


def test_check_tuner_fails_a_tuner_that_exits(tmp_path):
    with pytest.raises(PluginCheckError, match=r"plugin 'acme': tuner 'slow' called sys.exit\(0\) \(SystemExit\) "
                                               r"in tune"):
        check_tuner(_tuner_plugin(lambda self, job: sys.exit(0)), "slow", name="acme", tmp_dir=tmp_path)


def test_the_default_timeout_is_ten_minutes():
    import inspect

    from auditft.conformance import DEFAULT_TIMEOUT

    assert DEFAULT_TIMEOUT == 600
    assert inspect.signature(check_audit).parameters["timeout"].default == DEFAULT_TIMEOUT
    assert inspect.signature(check_tuner).parameters["timeout"].default == DEFAULT_TIMEOUT
