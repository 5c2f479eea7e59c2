"""Audit ``data``: is the training data fit to train on? A data-stage audit: it runs before
tuning, on the suite's data and the base model only (no adapter exists yet), and a failed check
can stop the run before any training time is spent.

Training rows are the rows the tuner learns from or validates on: ``data.train`` plus
``data.validation`` (both from the train file). Every row number this audit reports is the
0-based row of the **train file** (``Example.row``); test rows are named with their source file.

Checks (the pure functions are in ``auditft.data_checks``):

* label issues (classification): out-of-fold probabilities of a logistic regression on the
  base model's mean-pooled embeddings (or TF-IDF, option ``features``), then confident
  learning (cleanlab ``find_label_issues``, ranked by self-confidence);
* duplicates and train/test leakage: exact (normalised text) and near duplicates (MinHash LSH,
  confirmed by exact Jaccard of word shingles);
* representation: rows per group, per intersection of the group columns, and per label;
* personal data in the training text (emails, phones, Luhn-valid cards, US SSNs, UK NINOs),
  only ever shown masked;
* length: rows the tokenizer would truncate at ``tuner.training.max_length``.

Exports (reviewed by people, never applied to the run) go to ``job.extra["export_dir"]`` when
core gives one: ``train.cleaned.jsonl`` (train file rows minus label-issue and test-overlap
rows), ``removed_rows.jsonl`` (what was removed, why, and the suggested label) and, with
``export_masked``, ``train.masked.jsonl`` (every string value with personal data masked).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from auditft import hookimpl
from auditft.records import AuditResult, Metric, ReportSection
from auditft.records import finite_or_none as _num

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.jobs import AuditJob
    from auditft.registry import AuditRegistry

KIND = "data"
#: the audit's evidence floor: fewer training (or test) rows than this make a check insufficient
MIN_N = 20
#: characters of a row's text kept in the evidence (already masked)
SHOWN_CHARS = 300

GATE_METRICS: dict[str, Literal["higher", "lower"]] = {
    "label_issue_rate": "lower",
    "duplicate_rate": "lower",
    "train_test_overlap_rate": "lower",
    "min_group_count": "higher",
    "min_intersection_count": "higher",
    "min_label_share": "higher",
    "pii_row_rate": "lower",
    "truncated_rate": "lower",
}


class DataOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: cross-validation folds for the out-of-fold probabilities (fewer if a class is smaller)
    folds: int = Field(default=5, ge=2, le=20)
    #: what the label-issue model sees: the base model's embeddings, TF-IDF of the text, or both
    features: Literal["embeddings", "tfidf", "both"] = "tfidf"
    #: inverse regularisation strength of the logistic regression
    c: float = Field(default=1.0, gt=0, le=1e6)
    #: cleanlab's ``filter_by``
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                       "predicted_neq_given"] = "prune_by_noise_rate"
    #: Jaccard similarity of word-shingle sets from which two texts are near duplicates
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1)
    #: words per shingle (1: word sets, which keeps one changed word above 0.8 in short texts)
    shingle_size: int = Field(default=1, ge=1, le=10)
    num_perm: int = Field(default=128, ge=16, le=1024)
    #: a group or intersection with fewer training rows is flagged
    min_group_count: int = Field(default=30, ge=1)
    pii_types: list[str] = Field(default_factory=lambda: ["email", "phone", "credit_card", "ssn", "nino"])
    max_examples: int = Field(default=10, ge=0, le=500)
    export_cleaned: bool = True
    export_masked: bool = False

    @field_validator("pii_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        from auditft.data_checks import PII_TYPES

        unknown = sorted(set(value) - set(PII_TYPES))
        if unknown:
            raise ValueError(f"unknown pii_types {unknown}; known: {list(PII_TYPES)}")
        return value


def _rate(count: int, n: int) -> Metric:
    """A share of rows. No CI: these are counts over the whole dataset, not a sample."""
    return Metric(value=count / n if n else 0.0, n=n)


def _show(text: str) -> str:
    """A row's text for the evidence: personal data masked, then shortened."""
    from auditft.data_checks import mask_pii

    masked = mask_pii(text)
    return masked if len(masked) <= SHOWN_CHARS else masked[:SHOWN_CHARS] + "…"


def _text(ex: Example) -> str:
    """What a row says: the text, or prompt and response for generation."""
    return ex.text if ex.response is None else f"{ex.text}\n{ex.response}"


class _Findings:
    """What the checks add up to: metrics, evidence, notes and row lists."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.evidence: dict[str, Any] = {"seconds": {}}
        self.notes: list[str] = []
        self.rows: dict[str, list[int]] = {}
        #: train-file row -> suggested label, for the exports only (not in the evidence)
        self.suggestions: dict[int, dict[str, Any]] = {}


class DataAudit:
    def __init__(self, options: DataOptions) -> None:
        self.options = options

    def run(self, job: AuditJob) -> AuditResult:
        started = time.perf_counter()
        # in train-file order, so "the first copy" of a duplicate is the earliest row of the file
        rows = sorted(list(job.data.train) + list(job.data.validation), key=lambda ex: ex.row)
        if not rows:
            raise ValueError("the data audit needs training rows; data.train is empty")
        out = _Findings()
        out.evidence.update(task=job.task, n_train=len(rows), n_test=len(job.data.test),
                            labels=list(job.data.labels), group_columns=list(job.data.group_columns))
        steps = [("label_issues", self._label_issues), ("duplicates", self._duplicates),
                 ("groups", self._groups), ("pii", self._pii), ("lengths", self._lengths)]
        for name, step in steps:
            t = time.perf_counter()
            step(job, rows, out)
            out.evidence["seconds"][name] = round(time.perf_counter() - t, 3)
        self._exports(job, out)
        out.notes.append("Row numbers are 0-based rows of the train file (its first data row is 0); training "
                         "rows are data.train plus data.validation. Rates are counts over the whole data, "
                         "not estimates from a sample, so they carry no confidence interval.")
        return AuditResult(kind=KIND, metrics=out.metrics, evidence=out.evidence, notes=out.notes,
                           seconds=round(time.perf_counter() - started, 3), rows=out.rows)

    # -- label issues -----------------------------------------------------------------------------

    def _label_issues(self, job: AuditJob, rows: list[Example], out: _Findings) -> None:
        from auditft import data_checks as dc

        if job.task != "classification":
            out.notes.append("Label issues: skipped; a generation task has no class labels to check.")
            return
        opts = self.options
        found = dc.label_issues(self._features(job, rows), [ex.label for ex in rows], folds=opts.folds,
                                seed=job.seed, c=opts.c, filter_by=opts.filter_by)
        names = job.data.labels
        n = len(rows)
        out.metrics["label_issue_rate"] = _rate(len(found.indices), n)
        out.rows["label_issue_rows"] = sorted(rows[i].row for i in found.indices)
        ranked = list(zip(found.indices, found.suggested, found.quality))  # worst first
        suspects = [{"row": rows[i].row, "text": _show(rows[i].text), "given": names[rows[i].label],
                     "suggested": names[s], "label_quality": round(q, 4)} for i, s, q in ranked[:opts.max_examples]]
        out.suggestions = {rows[i].row: {"suggested_label": names[s], "label_quality": round(q, 4)}
                           for i, s, q in ranked}
        by_label: dict[str, int] = {name: 0 for name in names}
        for i in found.indices:
            by_label[names[rows[i].label]] += 1
        out.evidence["label_issues"] = {
            "n": n, "flagged": len(found.indices), "features": opts.features, "folds": found.folds,
            "c": opts.c, "filter_by": opts.filter_by, "cv_accuracy": _num(found.cv_accuracy),
            "by_given_label": by_label, "suspects": suspects,
        }
        feature_text = {"embeddings": "the base model's mean-pooled embeddings (standardised)",
                        "tfidf": "TF-IDF of word 1-2 grams", "both": "TF-IDF of word 1-2 grams beside the "
                        "L2-normalised base model embeddings"}[opts.features]
        out.notes.append(
            f"Label issues: out-of-fold probabilities ({found.folds}-fold stratified, seeded) of a logistic "
            f"regression (C={opts.c:g}) on {feature_text}, then confident learning (cleanlab find_label_issues, "
            f"filter_by={opts.filter_by}, ranked by self-confidence). label_quality is the out-of-fold "
            "probability of the given label. Flagged rows are suspects for a person to review, never relabelled "
            "automatically.")
        if found.cv_accuracy < 0.85:
            out.notes.append(
                f"The label-issue model is only {found.cv_accuracy:.1%} accurate out of fold, so many flagged rows "
                "are hard examples it gets wrong rather than wrong labels; read label_issue_rate as an upper "
                "bound and review the top suspects first (option features: tfidf or both may separate better).")

    def _features(self, job: AuditJob, rows: list[Example]) -> Any:
        import numpy as np

        from auditft.data_checks import text_features

        if self.options.features == "tfidf":
            return text_features([ex.text for ex in rows])
        splits = [split for split in ("train", "validation") if getattr(job.data, split)]
        embeddings = np.concatenate([np.asarray(job.models.base_embeddings(split)) for split in splits])
        if len(embeddings) != len(rows):
            raise ValueError(f"base_embeddings gave {len(embeddings)} rows for {len(rows)} training rows")
        # embeddings come in split order; ``rows`` are in file order
        position = {id(ex): i for i, ex in enumerate(ex for split in splits for ex in getattr(job.data, split))}
        embeddings = embeddings[[position[id(ex)] for ex in rows]]
        if self.options.features == "both":
            return text_features([ex.text for ex in rows], embeddings)
        return embeddings

    # -- duplicates and leakage -------------------------------------------------------------------

    def _duplicates(self, job: AuditJob, rows: list[Example], out: _Findings) -> None:
        from auditft.data_checks import find_duplicates

        opts = self.options
        test = list(job.data.test)
        found = find_duplicates([_text(ex) for ex in rows], [_text(ex) for ex in test],
                                threshold=opts.near_duplicate_threshold, shingle_size=opts.shingle_size,
                                num_perm=opts.num_perm, seed=job.seed)
        n = len(rows)
        out.metrics["duplicate_rate"] = _rate(len(found.redundant), n)
        out.rows["duplicate_rows"] = sorted(rows[i].row for i in found.redundant)
        out.rows["overlap_rows"] = sorted({rows[i].row for i in found.leaking_train})
        if test:
            out.metrics["train_test_overlap_rate"] = _rate(len(found.leaked_test), len(test))
        else:
            out.notes.append("Train/test overlap: there are no test rows to compare with.")
        exact_test = {p.b for p in found.cross_pairs if p.kind == "exact"}
        label = (lambda ex: job.data.labels[ex.label]) if job.task == "classification" else (lambda ex: None)
        # an exact copy whose label differs from the first copy's: at least one of them is wrong
        conflicting = [p for p in found.train_pairs if p.kind == "exact" and rows[p.a].label != rows[p.b].label]
        shown_first = set(conflicting)

        def pair(a: Example, b: Example, p: Any) -> dict[str, Any]:
            return {"a_row": a.row, "a_source": a.source, "b_row": b.row, "b_source": b.source, "kind": p.kind,
                    "similarity": round(p.similarity, 4), "a_text": _show(_text(a)), "b_text": _show(_text(b)),
                    "a_label": label(a), "b_label": label(b)}

        k = opts.max_examples
        out.evidence["duplicates"] = {
            "threshold": opts.near_duplicate_threshold, "shingle_size": opts.shingle_size, "num_perm": opts.num_perm,
            "n_train": n, "n_test": len(test),
            "train_pairs": {"exact": sum(p.kind == "exact" for p in found.train_pairs),
                            "near": sum(p.kind == "near" for p in found.train_pairs)},
            "redundant_rows": len(found.redundant), "conflicting_label_pairs": len(conflicting),
            "leaked_test_rows": len(found.leaked_test), "leaked_exact": len(exact_test),
            "leaked_near_only": len(set(found.leaked_test) - exact_test),
            "overlap_train_rows": len(found.leaking_train),
            "cross_examples": [pair(rows[p.a], test[p.b], p) for p in found.cross_pairs[:k]],
            "train_examples": [pair(rows[p.a], rows[p.b], p) for p in (conflicting + [
                p for p in found.train_pairs if p not in shown_first])[:k]],
        }
        out.notes.append(
            "Duplicates: texts are compared after NFKC normalisation, case folding, punctuation removal and "
            f"whitespace collapsing; near duplicates are MinHash LSH candidates ({opts.num_perm} permutations) over "
            f"{opts.shingle_size}-word shingles whose exact Jaccard similarity is at least "
            f"{opts.near_duplicate_threshold:g}. duplicate_rate is the share of training rows that repeat an "
            "earlier one (all but one row per cluster); train_test_overlap_rate is the share of test rows with an "
            "exact or near duplicate among the training rows; overlap_rows lists the train-file rows involved."
            + (" For generation, a row's text is its prompt and response." if job.task == "generation" else ""))

    # -- representation ---------------------------------------------------------------------------

    def _groups(self, job: AuditJob, rows: list[Example], out: _Findings) -> None:
        from dataclasses import asdict

        from auditft.data_checks import representation

        opts = self.options
        columns = list(job.data.group_columns)
        classification = job.task == "classification"
        labels = [ex.label for ex in rows] if classification else None
        n = len(rows)
        per_label = {name: sum(1 for ex in rows if ex.label == i) for i, name in enumerate(job.data.labels)}
        if classification:  # a declared label without rows has share 0
            out.metrics["min_label_share"] = Metric(value=min(per_label.values()) / n, n=n)
        if not columns:
            out.notes.append("Representation: the suite sets no data.group_columns; only label balance is shown.")
            out.evidence["groups"] = {"columns": [], "intersections": [], "absent": [], "small": [],
                                      "overall_labels": per_label, "missing_labels": []}
            return
        rep = representation([ex.groups for ex in rows], columns, opts.min_group_count, labels,
                             list(job.data.labels))
        groups = [asdict(g) for g in rep["columns"]]
        cells = [asdict(g) for g in rep["intersections"]]
        out.metrics["min_group_count"] = Metric(value=float(min(g["count"] for g in groups)), n=n, min_n=1)
        if cells:
            out.metrics["min_intersection_count"] = Metric(value=float(min(g["count"] for g in cells)), n=n, min_n=1)
        small = [g for g in groups + cells if g["small"]]
        one_label = [g["label"] for g in groups + cells
                     if classification and sum(1 for v in g["labels"].values() if v) < len(job.data.labels)]
        out.evidence["groups"] = {"min_group_count": opts.min_group_count, "columns": groups, "intersections": cells,
                                  "absent": rep["absent"], "overall_labels": rep["overall_labels"],
                                  "small": [{"label": g["label"], "count": g["count"]} for g in small],
                                  "missing_labels": one_label}
        out.notes.append(
            "Representation: min_group_count is the smallest group of any single group column; "
            "min_intersection_count the smallest combination of all group columns that occurs (combinations that "
            f"never occur are listed as absent, not counted). Every group or intersection under "
            f"{opts.min_group_count} training rows is flagged"
            + (": " + ", ".join(f"{g['label']} (n={g['count']})" for g in small[:20]) + "." if small else "; none is."))
        if one_label:
            out.notes.append(f"{len(one_label)} group(s) or intersections lack at least one label entirely: "
                             + ", ".join(one_label[:20]) + ".")

    # -- personal data ----------------------------------------------------------------------------

    def _pii(self, job: AuditJob, rows: list[Example], out: _Findings) -> None:
        from auditft.data_checks import scan_pii

        opts = self.options
        scan = scan_pii([_text(ex) for ex in rows], opts.pii_types, max_examples=opts.max_examples)
        out.metrics["pii_row_rate"] = _rate(len(scan.rows), len(rows))
        out.rows["pii_rows"] = sorted(rows[i].row for i in scan.rows)
        examples = [{"row": rows[e["position"]].row, "types": e["types"], "masked": e["masked"],
                     "text": _show(_text(rows[e["position"]]))}  # every type masked, whatever pii_types
                    for e in scan.examples]
        out.evidence["pii"] = {"types": list(opts.pii_types), "counts": scan.counts,
                               "rows_by_type": {t: len(v) for t, v in scan.rows_by_type.items()},
                               "rows": len(scan.rows), "examples": examples}
        out.notes.append(
            "Personal data: emails; phone numbers (international +CC, North American and trunk-prefix national "
            "formats, 7-15 digits); payment card numbers only when the Luhn checksum holds; US SSNs outside the "
            "never-issued ranges (area 000, 666, 900-999, group 00, serial 0000); UK National Insurance numbers "
            "(upper case, valid prefixes). Only masked values are stored or shown. Names and addresses are not "
            "detected.")

    # -- lengths ------------------------------------------------------------------------------------

    def _lengths(self, job: AuditJob, rows: list[Example], out: _Findings) -> None:
        from auditft.data_checks import token_lengths
        from auditft.models import ResolvedModel, load_tokenizer

        base = getattr(job.models, "base", None)
        if not isinstance(base, ResolvedModel):  # e.g. a stand-in session without a base model
            out.notes.append("Length: the model session has no base model, so no tokenizer; length not checked.")
            return
        tokenizer = load_tokenizer(base)
        max_length = job.suite.tuner.training.max_length
        if job.task == "classification":
            def count(batch: list[Example]) -> list[int]:
                return [len(ids) for ids in tokenizer([ex.text for ex in batch], verbose=False)["input_ids"]]
        else:
            count = _pair_counter(tokenizer, job.suite.generation.system_prompt)
        stats = token_lengths(rows, count, max_length)
        summary = stats.summary()
        out.metrics["truncated_rate"] = _rate(len(stats.truncated), len(rows))
        longest = sorted(range(len(rows)), key=lambda i: -stats.lengths[i])[:self.options.max_examples]
        out.evidence["lengths"] = {**{k: (_num(v) if isinstance(v, float) else v) for k, v in summary.items()},
                                   "longest": [{"row": rows[i].row, "tokens": stats.lengths[i]} for i in longest]}
        out.notes.append(
            "Length: tokens per training row with the base model's tokenizer (special tokens included"
            + ("; generation: the chat-formatted prompt plus the response, as in training" if job.task == "generation"
               else "") + f"); rows over tuner.training.max_length={max_length} are truncated in training.")

    # -- exports ------------------------------------------------------------------------------------

    def _exports(self, job: AuditJob, out: _Findings) -> None:
        opts = self.options
        wanted = [name for name, on in (("cleaned", opts.export_cleaned), ("masked", opts.export_masked)) if on]
        out.evidence["exports"] = []
        if not wanted:
            return
        export_dir = job.extra.get("export_dir") if job.extra else None
        train_file = next((f for f in job.data.files if f.role == "train"), None)
        if export_dir is None or train_file is None:
            why = "no export directory was given to this audit" if export_dir is None else "the train file is unknown"
            out.notes.append(f"Exports ({', '.join(wanted)}): not written; {why}.")
            return
        written = write_exports(Path(export_dir), Path(train_file.path), out.rows, out.suggestions, opts)
        out.evidence["exports"] = written
        out.evidence["export_dir"] = Path(export_dir).name
        out.notes.append(
            "Exports are for people to review; nothing is applied to this run. train.cleaned.jsonl is the train "
            "file minus label-issue rows and rows that duplicate a test row, in the original order and columns; "
            "removed_rows.jsonl lists each removed row with its reasons and suggested label"
            + ("; train.masked.jsonl is every train-file row with personal data masked in every text value."
               if opts.export_masked else "."))


def _pair_counter(tokenizer: Any, system: str | None) -> Any:
    """Token counts of generation rows exactly as ``auditft.chat.encode_pair`` builds them."""
    from auditft.chat import messages, render_prompt, render_response

    def count(batch: list[Example]) -> list[int]:
        out = []
        for ex in batch:
            chat = messages(ex.text, system)
            prompt = tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False, verbose=False)
            answer = tokenizer(render_response(tokenizer, chat, ex.response or ""), add_special_tokens=False,
                               verbose=False)
            out.append(len(prompt["input_ids"]) + len(answer["input_ids"]))
        return out

    return count


def write_exports(directory: Path, train_path: Path, rows: dict[str, list[int]],
                  suggestions: dict[int, dict[str, Any]], opts: DataOptions) -> list[dict[str, Any]]:
    """Write the review files; returns [{"file", "rows"}]."""
    from auditft.data import read_rows
    from auditft.data_checks import mask_pii
    from auditft.fsutil import atomic_write_text

    directory.mkdir(parents=True, exist_ok=True)
    raw = read_rows(train_path)
    written = []

    def dump(name: str, items: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(item, ensure_ascii=False, default=str) + "\n" for item in items)
        atomic_write_text(directory / name, text)
        written.append({"file": name, "rows": len(items)})

    if opts.export_cleaned:
        reasons: dict[int, list[str]] = {}
        for key, why in (("label_issue_rows", "label_issue"), ("overlap_rows", "test_overlap")):
            for r in rows.get(key, []):
                reasons.setdefault(r, []).append(why)
        dump("train.cleaned.jsonl", [row for i, row in enumerate(raw) if i not in reasons])
        dump("removed_rows.jsonl", [{"row": r, "reasons": reasons[r], **suggestions.get(r, {})}
                                    for r in sorted(reasons)])
    if opts.export_masked:
        # every detectable type is masked, whatever pii_types counts
        dump("train.masked.jsonl", [{k: mask_pii(v) if isinstance(v, str) else v for k, v in row.items()}
                                    for row in raw])
    return written


# -- registration and report ------------------------------------------------------------------------

SECTION = """
<p>{{ ev.n_train }} training rows{% if ev.n_test %}, {{ ev.n_test }} test rows{% endif %}; checked before tuning.
Row numbers below are 0-based rows of their file (the train file unless named), as in report.json and the exports.</p>
<table class="metrics">
  <tr><th>metric</th><th>value</th><th>n</th></tr>
  {% for name in names if name in metrics %}{% set m = metrics[name] %}
  <tr><td>{{ name }}</td><td>{{ fmt(m.value|int) if name.endswith("_count") else fmt(m.value) }}</td><td>{{ fmt(m.n) }}</td></tr>
  {% endfor %}
</table>
{% set li = ev.get("label_issues") %}
{% if li %}
<h4>Label issues: {{ li.flagged }} of {{ li.n }} rows flagged</h4>
<p class="small">Out-of-fold accuracy of the {{ li.features }} model: {{ fmt(li.cv_accuracy) }}; {{ li.folds }} folds.
Flagged per given label: {% for k, v in li.by_given_label.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>
{% if li.suspects %}
<table class="examples">
  <tr><th>row</th><th>text</th><th>given</th><th>suggested</th><th>label quality</th></tr>
  {% for s in li.suspects %}
  <tr><td>{{ s.row }}</td><td class="text">{{ s.text }}</td><td>{{ s.given }}</td><td>{{ s.suggested }}</td><td>{{ fmt(s.label_quality) }}</td></tr>
  {% endfor %}
</table>
{% endif %}
{% endif %}
{% set d = ev.get("duplicates") %}
{% if d %}
<h4>Duplicates and leakage</h4>
<p>{{ d.redundant_rows }} training rows repeat another ({{ d.train_pairs.exact }} exact and {{ d.train_pairs.near }} near pairs;
{{ d.conflicting_label_pairs }} exact pairs with different labels). {{ d.leaked_test_rows }} of {{ d.n_test }} test rows have a
duplicate in training ({{ d.leaked_exact }} exact, {{ d.leaked_near_only }} near only), involving {{ d.overlap_train_rows }} train-file rows.</p>
{% for title, pairs in (("Training vs test", d.cross_examples), ("Within training", d.train_examples)) if pairs %}
<table class="examples">
  <tr><th colspan="5">{{ title }}</th></tr>
  <tr><th>rows</th><th>kind</th><th>similarity</th><th>text</th><th>duplicate</th></tr>
  {% for pair in pairs %}
  <tr><td>{{ pair.a_source }}:{{ pair.a_row }} / {{ pair.b_source }}:{{ pair.b_row }}</td><td>{{ pair.kind }}</td><td>{{ fmt(pair.similarity) }}</td>
      <td class="text">{{ pair.a_text }}{% if pair.a_label is not none %} [{{ pair.a_label }}]{% endif %}</td>
      <td class="text">{{ pair.b_text }}{% if pair.b_label is not none %} [{{ pair.b_label }}]{% endif %}</td></tr>
  {% endfor %}
</table>
{% endfor %}
{% endif %}
{% set g = ev.get("groups") %}
{% if g %}
<h4>Representation</h4>
{% if g.overall_labels %}<p>Labels: {% for k, v in g.overall_labels.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
{% if g.columns %}
<table>
  <tr><th>group</th><th>rows</th><th>by label</th><th>flag</th></tr>
  {% for row in g.columns + g.intersections %}
  <tr><td>{{ row.label }}</td><td>{{ row.count }}</td>
      <td>{% for k, v in row.labels.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
      <td>{% if row.small %}<b>under {{ g.min_group_count }}</b>{% endif %}</td></tr>
  {% endfor %}
</table>
{% if g.absent %}<p class="small">Combinations that never occur: {{ g.absent|join(", ") }}.</p>{% endif %}
{% endif %}
{% endif %}
{% set pii = ev.get("pii") %}
{% if pii %}
<h4>Personal data: {{ pii.rows }} training rows</h4>
<p>{% for t in pii.types %}{{ t }} {{ pii.counts[t] }} ({{ pii.rows_by_type[t] }} rows){% if not loop.last %}, {% endif %}{% endfor %}.</p>
{% if pii.examples %}
<table class="examples">
  <tr><th>row</th><th>types</th><th>found (masked)</th><th>text (masked)</th></tr>
  {% for e in pii.examples %}
  <tr><td>{{ e.row }}</td><td>{{ e.types|join(", ") }}</td><td>{{ e.masked|join(", ") }}</td><td class="text">{{ e.text }}</td></tr>
  {% endfor %}
</table>
{% endif %}
{% endif %}
{% set l = ev.get("lengths") %}
{% if l %}
<h4>Length</h4>
<p>{{ l.truncated }} of {{ l.n }} rows exceed max_length {{ l.max_length }} tokens{% if l.truncated %} and lose
{{ fmt(l.mean_tokens_cut, 1) }} tokens on average (at most {{ l.max_tokens_cut }}){% endif %}. Tokens per row: median {{ fmt(l.p50, 0) }},
90th percentile {{ fmt(l.p90, 0) }}, 99th {{ fmt(l.p99, 0) }}, longest {{ l.max }}.</p>
{% endif %}
{% if ev.exports %}
<p class="small">Exports for review in {{ ev.export_dir }}/: {% for e in ev.exports %}{{ e.file }} ({{ e.rows }} rows){% if not loop.last %}, {% endif %}{% endfor %}.</p>
{% endif %}
<h4>Method</h4>
<ul class="small">{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
"""


@hookimpl
def auditft_register_audits(register: AuditRegistry) -> None:
    register.add(
        KIND,
        DataAudit,
        summary="training data before tuning: label issues (confident learning), duplicates and train/test "
                "leakage, group representation, personal data, truncation",
        tasks=("classification", "generation"),
        options=DataOptions,
        metrics=GATE_METRICS,
        min_n=MIN_N,
        stage="data",
        limitations=(
            "label issues need a classification task, and are only as good as the cheap model behind them: "
            "hard but correct rows are flagged too",
            "near duplicates are lexical (word shingles), not paraphrases",
            "personal data detection is pattern-based: names, addresses and free-form identifiers are missed",
            "groups come from data.group_columns; nothing is inferred",
        ),
    )


@hookimpl
def auditft_report_sections(report: dict[str, Any]) -> list[ReportSection]:
    from auditft.report import render_fragment

    result = report.get("audits", {}).get(KIND)
    if not result or result.get("error") or not result.get("evidence"):
        return []
    html = render_fragment(SECTION, ev=result["evidence"], metrics=result.get("metrics", {}),
                           notes=result.get("notes", []), names=list(GATE_METRICS))
    return [ReportSection(title="Training data", html=html, anchor="audit-data", order=-10)]
