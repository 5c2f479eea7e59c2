"""A finished run as ``auditft compare`` reads it, and whether several runs can be compared.

Runs compare when they are of the same task, on the same labels, and their test rows are the
same: the same test data bytes (``manifest.json``'s data hashes; without a test file, the same
data and split seed), and, where both runs stored their rows, the same row keys in the same
order. Anything else is refused (exit 2) naming the first thing that differs. Different audits
are allowed with a warning: only the checks both ran are set side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditft.compare.evidence import EVIDENCE_FILE, RESOURCES_FILE, read_resources, read_test_rows
from auditft.errors import AuditftError, IntegrityError, RunDirError
from auditft.manifest import sha256_file


class NotComparable(AuditftError):
    """The runs are not of the same task on the same test rows (exit 2); the message says
    what differs."""


@dataclass
class RunRecord:
    """One finished run (or a released folder): its report, manifest and per-row outcomes."""

    path: Path
    report: dict[str, Any]
    manifest: dict[str, Any]
    rows: list[dict[str, Any]] | None
    #: why ``rows`` is None (an older run, or a released folder that ships no evidence)
    rows_missing: str | None = None
    resources: dict[str, Any] | None = None
    #: the column name in a comparison: the run id, suffixed when a run is given twice
    label: str = ""

    @property
    def run_id(self) -> str:
        return str(self.report.get("run_id") or self.path.name)

    @property
    def task(self) -> str:
        return str(self.report.get("task"))

    @property
    def report_sha256(self) -> str | None:
        return (self.manifest.get("artefacts") or {}).get("report.json")

    def review_state(self) -> str | None:
        """Where the run stands now: ``released`` for a released folder, else the ledger's
        review state (``auditft status``); the report's state at the gate if neither reads."""
        if (self.path / "signoff.jsonl").is_file():
            return "released"
        from auditft.signoff.status import run_status

        try:
            return str(run_status(self.path).get("state"))
        except (AuditftError, OSError, ValueError, KeyError):
            return self.report.get("state")

    def checks(self) -> dict[str, dict[str, Any]]:
        return {f"{c['audit']}:{c['metric']}": c for c in self.report.get("checks", [])}

    def audits(self) -> list[str]:
        return sorted(self.report.get("audits", {}))

    def cost(self) -> dict[str, Any]:
        """What the run spent: parameters, adapter size, seconds, peak memory (when recorded)."""
        tuner = self.report.get("tuner", {})
        timings = self.report.get("timings", {})
        res = self.resources or {}
        return {
            "tuner": tuner.get("kind"),
            "trainable_parameters": tuner.get("trainable_parameters"),
            "total_parameters": tuner.get("total_parameters"),
            "adapter_bytes": tuner.get("adapter_bytes"),
            "training_seconds": timings.get("tuning", tuner.get("seconds")),
            "audit_seconds": timings.get("auditing"),
            "peak_rss_bytes": res.get("peak_rss_bytes"),
            "cuda_peak_bytes": res.get("cuda_peak_bytes"),
            "peak_memory_note": res.get("measured") or "not recorded (a run from before evidence/resources.json)",
        }


def load_run(path: Path) -> RunRecord:
    """A finished run directory, or a released folder (``report.json`` + ``manifest.json``)."""
    path = Path(path)
    report_path, manifest_path = path / "report.json", path / "manifest.json"
    if not report_path.is_file() or not manifest_path.is_file():
        raise RunDirError(f"{path}: not a finished run (no report.json and manifest.json)")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot read report.json / manifest.json ({exc})") from None
    record = RunRecord(path, report, manifest, None)
    record.rows, record.rows_missing = _rows(path, manifest)
    if record.rows is not None or (path / RESOURCES_FILE).is_file():
        _check_bound(path, manifest, RESOURCES_FILE)
        record.resources = read_resources(path)
    return record


def _check_bound(run_dir: Path, manifest: dict[str, Any], rel: str) -> None:
    """An evidence file is read only when its bytes are the ones the manifest recorded."""
    recorded = (manifest.get("artefacts") or {}).get(rel)
    path = run_dir / rel
    if path.is_file() and recorded is not None and sha256_file(path) != recorded:
        raise IntegrityError(f"{path}: bytes differ from manifest.json (sha256 {recorded[:12]}...); "
                             "the run's evidence was changed after it was written")


def _rows(path: Path, manifest: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    if not (path / EVIDENCE_FILE).is_file():
        if (path / "signoff.jsonl").is_file():
            return None, "a released folder ships no per-row evidence and its run directory was not found"
        return None, f"the run has no {EVIDENCE_FILE} (made before auditft stored per-row outcomes)"
    _check_bound(path, manifest, EVIDENCE_FILE)
    return read_test_rows(path), None


def test_data(record: RunRecord) -> dict[str, Any]:
    """What fixes a run's test rows: the test file's hash and rows, or without one the data
    files and the split seed (the test split was drawn from train)."""
    files = record.manifest.get("data") or []
    test = [f for f in files if f.get("role") == "test"]
    if test:
        return {"test file sha256": test[0].get("sha256"), "test rows": test[0].get("rows")}
    return {"data sha256": sorted(str(f.get("sha256")) for f in files),
            "data seed": (record.manifest.get("seeds") or {}).get("data"),
            "test rows": (record.manifest.get("splits") or {}).get("test")}


def check_comparable(runs: list[RunRecord]) -> list[str]:
    """Raise ``NotComparable`` naming what differs; return warnings (one line each)."""
    first = runs[0]
    for other in runs[1:]:
        def differs(what: str, a: object, b: object) -> NotComparable:
            return NotComparable(f"{other.path}: {what} differs from {first.path} ({_short(a)} != {_short(b)}); "
                                 "only runs of one task on the same test rows compare")
        if other.task != first.task:
            raise differs("the task", first.task, other.task)
        mine, theirs = test_data(first), test_data(other)
        for key in mine:
            if mine.get(key) != theirs.get(key):
                raise differs(key, mine.get(key), theirs.get(key))
        if list(first.report.get("labels") or []) != list(other.report.get("labels") or []):
            raise differs("the labels", first.report.get("labels"), other.report.get("labels"))
        if first.rows is not None and other.rows is not None:
            if len(first.rows) != len(other.rows):
                raise differs("the number of stored test rows", len(first.rows), len(other.rows))
            for a, b in zip(first.rows, other.rows):
                if a["key"] != b["key"]:
                    raise differs(f"test row {a['i']} (file row {a.get('row')})", a["key"][:12], b["key"][:12])
    warnings = []
    audits = {r.run_id: r.audits() for r in runs}
    if len({tuple(a) for a in audits.values()}) > 1:
        listed = "; ".join(f"{run_id}: {', '.join(a) or 'none'}" for run_id, a in audits.items())
        warnings.append(f"warning: the runs ran different audits ({listed}); only checks they share are paired")
    return warnings


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
