"""auditft audit plugin ``myaudit``: how often does the model give a (near) empty answer?

One module is a whole plugin: an options model, an audit class with ``run(job)``, and two
hook implementations (registration, report section). See auditft's docs/plugins.md.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection

if TYPE_CHECKING:  # types only: importing auditft's internals at run time is not needed
    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry, Direction

KIND = "myaudit"
#: gate metrics this audit can produce and which direction is better
METRICS: dict[str, Direction] = {"short_answer_rate": "lower", "short_answer_rate_delta": "lower"}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown keys in the suite are errors

    #: an answer with at most this many words counts as short
    max_words: int = Field(default=1, ge=0, le=100)
    n_boot: int = Field(default=1000, ge=100, le=100_000)


def is_short(answer: str, max_words: int) -> bool:
    return len(answer.split()) <= max_words


class Audit:
    def __init__(self, options: Options) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        """Answers of the adapter and of the base model to the test prompts -> metrics with CIs.
        Raise on failure: core turns the exception into an ``error`` result naming this plugin."""
        from auditft.stats import bootstrap_means

        started = time.perf_counter()
        prompts = [ex.text for ex in job.data.test]
        scores = {which: [float(is_short(a, self.options.max_words))
                          for a in job.models.generate(prompts, which=which)]
                  for which in ("adapter", "base")}
        figures = bootstrap_means({"short_answer_rate": scores["adapter"]}, {"short_answer_rate": scores["base"]},
                                  seed=job.seed, n_boot=self.options.n_boot)
        metrics = {name: Metric(value=f["value"], ci_low=f["ci_low"], ci_high=f["ci_high"], n=f["n"],
                                base_value=f["base_value"]) for name, f in figures.items()}
        evidence = {"n": len(prompts), "short": {w: int(sum(s)) for w, s in scores.items()},
                    "max_words": self.options.max_words}
        return AuditResult(kind=KIND, metrics=metrics, evidence=evidence,
                           notes=[f"An answer of at most {self.options.max_words} words counts as short."],
                           seconds=round(time.perf_counter() - started, 3))


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(KIND, Audit, summary="share of (near) empty answers, adapter vs base", tasks=("generation",),
                 options=Options, metrics=METRICS, min_n=20)


SECTION = """
<p>{{ ev.n }} test prompts; short answers (at most {{ ev.max_words }} words):
adapter {{ ev.short.adapter }}, base {{ ev.short.base }}.</p>
{% for note in notes %}<p class="small">{{ note }}</p>{% endfor %}
"""


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import audit_result, render_fragment  # autoescaped: model and data text stays inert

    result = audit_result(report, KIND)  # None when the audit did not run, failed or left no evidence
    if result is None:
        return []
    html = render_fragment(SECTION, ev=result["evidence"], notes=result.get("notes", []))
    return [ReportSection(title="Short answers (myaudit)", html=html, anchor="audit-myaudit", order=60)]
