"""Core's service for loading a finished run's adapter through that run's own tuner plugin.

A tuner that builds on another run (distillation's ``teacher: run:DIR``) gets this service as
``TuneJob.adapters``, built on the command's plugin manager, so the other run's tuner comes
from the same plugin set (``--strict-plugins``, disabled or allow-listed plugins) as the
command. Errors are ``RunAdapterError`` with a message the caller prefixes with its own
context (which option named the run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.adapter_meta import META_FILE, read_meta
from auditft.errors import AuditftError
from auditft.jobs import AdapterLoader, RunAdapter

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.models import ResolvedModel
    from auditft.plugins import PluginManager


class RunAdapterError(AuditftError):
    """A run directory cannot provide an adapter for this job; the message says why."""


class RunAdapters(AdapterLoader):
    """Loads other runs' adapters with the tuners of ``plugins``."""

    def __init__(self, plugins: PluginManager) -> None:
        self.plugins = plugins

    def finished(self, run_dir: Path) -> dict[str, Any]:
        """The adapter metadata of a finished auditft run, or ``RunAdapterError``."""
        if not run_dir.is_dir():
            raise RunAdapterError(f"no such run directory ({run_dir})")
        if not (run_dir / "adapter" / META_FILE).is_file():
            raise RunAdapterError(f"not an auditft run directory with an adapter (no adapter/{META_FILE})")
        if not (run_dir / "manifest.json").is_file() or not (run_dir / "suite.yaml").is_file():
            raise RunAdapterError("the run is not finished (no manifest.json); only a completed run can teach")
        return read_meta(run_dir / "adapter")

    def check_fits(self, run_dir: Path, meta: dict[str, Any], base: ResolvedModel, data: SplitData) -> None:
        """The run's adapter was trained for ``data``'s labels on ``base``'s weights."""
        if list(meta.get("labels") or []) != list(data.labels):
            raise RunAdapterError(f"the run's labels {meta.get('labels')} differ from this suite's {data.labels}")
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        recorded = (manifest.get("base_model") or {}).get("weights_sha256")
        if recorded and base.weights_sha256 and recorded != base.weights_sha256:
            raise RunAdapterError(f"the run was tuned on other base weights "
                                  f"({(manifest.get('base_model') or {}).get('ref')!r}) than "
                                  f"model.base {base.ref!r}")

    def load(self, run_dir: Path, base: ResolvedModel, data: SplitData) -> RunAdapter:
        """The run's adapter on ``base``, loaded by the run's tuner with the run's options
        (checked: finished, fits ``data`` and ``base``, tuner available, options valid)."""
        import yaml
        from pydantic import ValidationError

        meta = self.finished(run_dir)
        self.check_fits(run_dir, meta, base, data)
        kind = meta.get("kind")
        entry = self.plugins.tuners.get(str(kind))
        if entry is None:
            hint = self.plugins.failure_for(str(kind)) or "is its plugin installed?"
            raise RunAdapterError(f"the run's tuner {kind!r} is not available ({hint})")
        suite = yaml.safe_load((run_dir / "suite.yaml").read_text(encoding="utf-8")) or {}
        raw_options = ((suite.get("tuner") or {}).get("options")) or {}
        try:
            options = entry.options.model_validate(raw_options)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise RunAdapterError(f"the run's tuner options no longer validate: "
                                  f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        model, tokenizer = entry.factory(options).load(base, run_dir / "adapter", data)
        return RunAdapter(model=model, tokenizer=tokenizer, kind=str(kind), run_dir=run_dir,
                          run_name=run_dir.name, tuning_seconds=_tuning_seconds(run_dir))


def _tuning_seconds(run_dir: Path) -> float | None:
    report = run_dir / "report.json"
    if not report.is_file():
        return None
    seconds: float | None = (json.loads(report.read_text(encoding="utf-8")).get("tuner") or {}).get("seconds")
    return seconds  # as recorded: an int stays an int in the facts
