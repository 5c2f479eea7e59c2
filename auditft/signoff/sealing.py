"""What a run commits to before it trains, and what it trusts when it resumes.

**Pre-registration.** The ``created`` event records, before any training, the sha256 of the
gates (audit, metric, direction, threshold, rationale), of the release policy and of the test
data. The report shows them, and lists earlier runs of the same suite name in the same
ledger whose gates or test data differed: a threshold moved until the model passed
("threshold shopping") is then on the record, not only in version control.

**Sealed evidence.** Results a run caches to survive a kill (``work/tuning.json``,
``work/audits/<kind>.json``) are sealed when written: their sha256 goes into the ledger as a
``sealed`` event. On ``--resume`` a cached file is used only when its bytes still match the
newest seal for it; otherwise it is recomputed and the report says so. So editing a cached
audit value between a kill and a resume changes nothing but the time the run takes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.suite import Suite


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def preregistration(suite: Suite, data: SplitData) -> dict[str, str]:
    """The hashes a run commits to in its ``created`` event."""
    gates = [{"audit": a.kind, "metric": g.metric, "min": g.min, "max": g.max, "rationale": g.rationale}
             for a in suite.audits for g in a.gates]
    test = [f.sha256 for f in data.files if f.role == "test"]
    # without a test file the test rows are split off train: the file, fraction and seed decide them
    test_source = test or {"split_from": [f.sha256 for f in data.files if f.role == "train"],
                           "validation_fraction": suite.data.validation_fraction, "seed": suite.data.seed}
    return {"gates_sha256": _digest(gates), "policy_sha256": _digest(suite.release.model_dump(mode="json")),
            "test_data_sha256": _digest(test_source)}


def earlier_differences(events: list[dict[str, Any]], suite_name: str, run_id: str,
                        mine: dict[str, str]) -> list[dict[str, Any]]:
    """Earlier ``created`` events of the same suite name whose gates or test data differ."""
    out = []
    for event in events:
        if event.get("type") != "created" or event.get("suite") != suite_name or event.get("run_id") == run_id:
            continue
        if "gates_sha256" not in event:
            continue  # a run recorded before pre-registration existed
        changed = [what for what in ("gates_sha256", "test_data_sha256") if event.get(what) != mine.get(what)]
        if changed:
            out.append({"run_id": event.get("run_id"), "time": event.get("time"),
                        "changed": [c.removesuffix("_sha256").replace("_", " ") for c in changed]})
    return out


def seal(run_dir: Path, run_id: str, path: Path) -> None:
    """Record the sha256 of a cache file the run will trust on resume."""
    from auditft.manifest import sha256_file
    from auditft.signoff.events import record

    rel = path.relative_to(run_dir).as_posix()
    record(run_dir, {"type": "sealed", "run_id": run_id, "actor": "auditft", "file": rel, "sha256": sha256_file(path)})


def is_sealed(run_dir: Path, run_id: str, path: Path) -> bool:
    """Whether ``path`` holds exactly the bytes of its newest seal in the ledger."""
    from auditft.manifest import sha256_file
    from auditft.signoff.layout import ledger_for

    if not path.exists():
        return False
    rel = path.relative_to(run_dir).as_posix()
    seals = [e for e in ledger_for(run_dir).events(run_id) if e.get("type") == "sealed" and e.get("file") == rel]
    return bool(seals) and seals[-1].get("sha256") == sha256_file(path)
