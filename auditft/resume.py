"""What a resumed run reuses: a finished tuning and finished audits, each only when its
file matches its seal in the ledger and (audits) its cache key still matches what it saw."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from auditft.context import RunContext
from auditft.records import AuditResult, TuneResult
from auditft.signoff import sealing


def unsealed(ctx: RunContext, path: Path) -> bool:
    """A cached file that is absent, or whose bytes do not match its seal (then noted)."""
    if not path.exists():
        return True
    if sealing.is_sealed(ctx.run_dir, ctx.run_id, path):
        return False
    ctx.signoff.setdefault("recomputed", []).append(
        f"{path.relative_to(ctx.run_dir).as_posix()}: did not match its seal in the ledger; recomputed")
    return True


def finished_tuning(ctx: RunContext, work_dir: Path) -> TuneResult | None:
    path = work_dir / "tuning.json"
    if unsealed(ctx, path):
        return None
    data = json.loads(path.read_text(encoding="utf-8"))["result"]
    data["loss_curve"] = [tuple(point) for point in data["loss_curve"]]
    return TuneResult(**data)


def audit_key(evidence: dict[str, Any], kind: str, options: dict[str, Any], seed: int) -> str:
    blob = json.dumps({**evidence, "kind": kind, "options": options, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cached_audit(ctx: RunContext, work_dir: Path, kind: str, key: str) -> AuditResult | None:
    path = work_dir / "audits" / f"{kind}.json"
    if unsealed(ctx, path):
        return None
    cached = json.loads(path.read_text(encoding="utf-8"))
    return AuditResult.from_dict(cached["result"]) if cached.get("key") == key else None
