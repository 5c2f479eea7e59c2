"""The run a comparison ``--against-released`` is measured against, and where its result lives.

``DIR`` may be a released folder (``auditft release --to`` wrote ``DIR/<suite>/<run_id>/``), the
registry folder itself (the newest release of the run's suite in it), or a run directory.
Without ``DIR``: the newest approved or released run of the same suite in the run's own
reports directory, by the ledger's review state (``auditft.signoff.status``).

A released folder ships no per-row evidence, so its rows are read from the run directory of
the same id beside the compared run, and only when their bytes are the ones the released
``manifest.json`` recorded.

The result is stored outside every run directory, so no finished run changes (a file added to
a run after its gate would fail ``auditft verify``): ``<reports>/compare/<run_id>/compare.json``
and ``compare.html``, which the reviewer workspace shows on the run's page.
"""

from __future__ import annotations

from pathlib import Path

from auditft.compare.evidence import EVIDENCE_FILE
from auditft.compare.runs import RunRecord, load_run
from auditft.errors import AuditftError, RunDirError
from auditft.manifest import sha256_file

#: review states that count as "signed off"
SIGNED_OFF = ("approved", "released")
COMPARE_DIR = "compare"


def against_path(reports: Path, run_id: str) -> Path:
    """Where ``auditft compare RUN --against-released`` writes by default, and the workspace reads."""
    return Path(reports) / COMPARE_DIR / run_id


def released_baseline(subject: RunRecord, where: Path | None) -> RunRecord:
    """The signed-off run ``subject`` is compared against (see the module docstring)."""
    suite = subject.report.get("suite")
    if where is None:
        found = _newest_signed_off(subject)
        if found is None:
            raise RunDirError(f"{subject.path.parent}: no approved or released run of suite {suite!r} "
                              "other than this one; name one with --against-released DIR")
        return found
    where = Path(where)
    if (where / "report.json").is_file():
        return _with_run_rows(load_run(where), subject.path.parent)
    candidates = [p for p in sorted((where / str(suite)).glob("*")) if (p / "report.json").is_file()
                  and p.name != subject.run_id] if (where / str(suite)).is_dir() else []
    if not candidates:
        raise RunDirError(f"{where}: neither a released folder nor a registry holding a release of suite {suite!r}")
    records = [load_run(p) for p in candidates]
    newest = max(records, key=lambda r: str(r.report.get("created_at") or ""))
    return _with_run_rows(newest, subject.path.parent)


def _newest_signed_off(subject: RunRecord) -> RunRecord | None:
    from auditft.signoff.layout import find_runs
    from auditft.signoff.status import run_status

    best: tuple[str, Path] | None = None
    for run_dir in find_runs(subject.path.parent):
        if run_dir.resolve() == subject.path.resolve():
            continue
        try:
            status = run_status(run_dir)
        except AuditftError:
            continue  # an unreadable run is no baseline
        if status.get("state") not in SIGNED_OFF or status.get("suite") != subject.report.get("suite"):
            continue
        key = str(status.get("created_at") or "")
        if best is None or key > best[0]:
            best = (key, run_dir)
    return None if best is None else load_run(best[1])


def _with_run_rows(record: RunRecord, reports: Path) -> RunRecord:
    """A released folder's rows from its run directory in ``reports``, when the bytes match."""
    if record.rows is not None:
        return record
    sibling = Path(reports) / record.run_id
    recorded = (record.manifest.get("artefacts") or {}).get(EVIDENCE_FILE)
    path = sibling / EVIDENCE_FILE
    if recorded is None or not path.is_file():
        return record
    if sha256_file(path) != recorded:
        record.rows_missing = f"{path}: bytes differ from the released manifest.json; not used"
        return record
    run = load_run(sibling)
    record.rows, record.rows_missing, record.resources = run.rows, None, run.resources
    return record
