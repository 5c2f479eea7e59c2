"""The parts of ``check_audit`` that look past one result's shape: base-model figures, every
declared metric produced on some task, the split the audit scored, and section hooks on a
report where the audit is absent or errored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditft.conformance.common import HOSTILE_ERROR, PluginCheckError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from auditft.records import AuditResult, ReportSection
    from auditft.registry import Entry

#: how the kit words a scored split for each session method
_ASKED = {"adapter_proba": "adapter_proba({split!r})", "base_probe_proba": "base_probe_proba({split!r})",
          "base_embeddings": "base_embeddings({split!r})", "generate": "generate() on {split} prompts",
          "sample": "sample() on {split} prompts"}


def check_base_figures(result: AuditResult, entry: Entry, name: str, task: str) -> None:
    """A model-stage audit measures the base model too: at least one metric with evidence has
    ``base_value`` (metrics with ``n=0``, which the toy data did not exercise, do not count)."""
    measured = [m for m in result.metrics.values() if m.n != 0]
    if entry.stage != "model" or not measured or any(m.base_value is not None for m in measured):
        return
    raise PluginCheckError(
        f"plugin {name!r}: audit {entry.kind!r} gives no base-model figure on the {task} task (no metric has "
        "base_value), so the report shows no delta; measure the base model too (base_probe_proba, "
        "generate(..., which='base')), or pass check_audit(..., base_figures=False) if the audit has none "
        "by nature")


def check_produced(results: dict[str, AuditResult], entry: Entry, name: str, optional: Iterable[str] = ()) -> None:
    """Every metric declared at registration appears in the result of at least one of the tasks
    the kit ran (a built-in may produce a task's subset; one produced on no task is a promise
    a suite's gate on it turns into an ``error`` check), unless the author names it ``optional``:
    produced only under other options or data than the kit's."""
    optional = set(optional)
    unknown = sorted(optional - set(entry.metrics))
    if unknown:
        raise PluginCheckError(f"plugin {name!r}: audit {entry.kind!r}: optional_metrics {unknown} are not declared "
                               f"in register.add(metrics=...) (declared: {sorted(entry.metrics)})")
    produced = {metric for result in results.values() for metric in result.metrics}
    missing = sorted(set(entry.metrics) - produced - optional)
    if missing:
        raise PluginCheckError(
            f"plugin {name!r}: audit {entry.kind!r} declares metric(s) {missing} in register.add(metrics=...) but "
            f"produced none of them on the kit's runs (tasks {sorted(results)}); a gate on one would be an error "
            "check: produce it, leave it out of metrics=, or, when only other options or data produce it, name it "
            "in check_audit(..., optional_metrics=[...])")


def check_splits(scored: list[tuple[str, str, str]], entry: Entry, name: str) -> None:
    """A model-stage audit measures the test split: scoring a model on train (or validation)
    rows and never on test measures what the tuner saw. ``scored`` is the fake session's record."""
    if entry.stage != "model":
        return
    for which in ("adapter", "base"):
        asked = [(method, split) for w, method, split in scored if w == which]
        if any(split == "test" for _, split in asked):
            continue
        seen = [(method, split) for method, split in asked if split in ("train", "validation")]
        if seen:
            method, split = seen[0]
            raise PluginCheckError(
                f"plugin {name!r}: audit {entry.kind!r} scored the {which} model with "
                f"{_ASKED[method].format(split=split)} and never on the test split; audits measure data.test "
                "(adapter_proba('test'), generate on data.test prompts), the rows the tuner never saw; an audit "
                "that measures the training rows on purpose (memorisation) passes check_audit(..., scores_train=True)")


def check_section_hooks(check: Callable[..., list[ReportSection]], base: dict[str, Any], entry: Entry,
                        name: str) -> None:
    """The plugin's section hook, called with a report where its audit is absent and one where
    it errored (its error text carries markup), must return sections or ``[]``, never raise."""
    from auditft.records import AuditResult

    kind = entry.kind
    absent = {**base, "audits": {k: v for k, v in base.get("audits", {}).items() if k != kind}}
    check(absent, when=f"when audit {kind!r} is absent from the report")
    errored = AuditResult(kind=kind, error=f"plugin {name!r}: RuntimeError: {HOSTILE_ERROR}", plugin=name)
    check({**base, "audits": {**base.get("audits", {}), kind: errored.to_dict()}, "verdict": "blocked"},
          when=f"when audit {kind!r} has an error")
