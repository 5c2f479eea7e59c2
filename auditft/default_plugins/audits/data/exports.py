"""Exports for people to review (never applied to the run): the train file minus label-issue
and test-overlap rows, what was removed and why, and optionally every row with personal data
masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.data.findings import Findings
from auditft.default_plugins.audits.data.personal_data import mask_pii

if TYPE_CHECKING:
    from auditft.default_plugins.audits.data.options import DataOptions
    from auditft.jobs import AuditJob


def export_for_review(job: AuditJob, out: Findings, options: DataOptions) -> None:
    """Write the exports to ``job.extra["export_dir"]`` when core gives one; note why not otherwise."""
    opts = options
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


def write_exports(directory: Path, train_path: Path, rows: dict[str, list[int]],
                  suggestions: dict[int, dict[str, Any]], opts: DataOptions) -> list[dict[str, Any]]:
    """Write the review files; returns [{"file", "rows"}]."""
    from auditft.data import read_rows
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
