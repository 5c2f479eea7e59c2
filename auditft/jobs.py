"""The plugin contract in code: what core hands to plugins (a ``TuneJob`` for tuners, an
``AuditJob`` for audits) and, as typed protocols, what a tuner, an audit, the model session
(``Models``) and core's retraining service provide.

The jobs are plain dataclasses so third-party plugins depend on names, not on core internals.
Plugins do not inherit from the protocols (``typing.Protocol`` is structural): an object with
the right methods *is* a tuner or an audit. ``auditft.testing.check_tuner`` / ``check_audit``
check them at run time for authors; mypy checks them statically for core and the built-ins.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

    from auditft.data import SplitData
    from auditft.models import ResolvedModel
    from auditft.records import AuditResult, TuneResult
    from auditft.suite import Suite, TrainingSpec


@dataclass
class TuneJob:
    """Train on ``data.train`` (``data.validation`` for early stopping / eval loss) and write
    the adapter into ``adapter_dir`` as safetensors. Scratch files (checkpoints) go to
    ``work_dir``, which stays inside the run directory and is never released."""

    suite: Suite
    task: str
    base: ResolvedModel
    data: SplitData
    training: TrainingSpec
    options: BaseModel
    seed: int
    adapter_dir: Path
    work_dir: Path
    resume: bool = False
    #: core's service for loading another finished run's adapter through that run's own
    #: tuner plugin, from the command's plugin manager (distillation's ``teacher: run:DIR``)
    adapters: AdapterLoader | None = None

    @classmethod
    def for_suite(cls, suite: Suite, base: ResolvedModel, data: SplitData, options: BaseModel, *,
                  adapter_dir: Path, work_dir: Path, training: TrainingSpec | None = None,
                  resume: bool = False, adapters: AdapterLoader | None = None) -> TuneJob:
        """The one way core builds a tune job: the suite's task, seed and training settings
        (``training`` overrides the latter, e.g. a retraining without checkpoints)."""
        return cls(suite=suite, task=suite.task, base=base, data=data, training=training or suite.tuner.training,
                   options=options, seed=suite.seed, adapter_dir=adapter_dir, work_dir=work_dir, resume=resume,
                   adapters=adapters)


@dataclass
class AuditJob:
    """Audit the adapter (and the base model, for deltas) on ``data.test``.

    ``models`` loads the adapter once and caches predictions, so several audits share one
    inference pass over the test set.
    """

    suite: Suite
    task: str
    data: SplitData
    options: BaseModel
    seed: int
    models: Models
    work_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)
    #: core's retraining service (``auditft.retraining``): a fresh adapter trained on given
    #: rows with a given seed, scored through a session like ``models`` (k-fold uses it)
    retrain: Retrainer | None = None


# -- what plugins and core services provide ---------------------------------------------


@runtime_checkable
class Tuner(Protocol):
    """A fine-tuning backend, built by its registered factory from its validated options."""

    def tune(self, job: TuneJob) -> TuneResult:
        """Train on ``job.data.train`` and write the adapter (safetensors) into ``job.adapter_dir``."""
        ...

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """(model, tokenizer) with the adapter applied, for the audits' inference."""
        ...


@runtime_checkable
class Audit(Protocol):
    """An audit, built by its registered factory from its validated options."""

    def run(self, job: AuditJob) -> AuditResult:
        """Measure; return metrics (gated by the suite) and JSON evidence (shown in the report)."""
        ...


class Models(Protocol):
    """What an audit gets as ``job.models``: the base model and the adapter, loaded once, with
    predictions cached so several audits share one inference pass. ``split`` is ``"train"``,
    ``"validation"`` or ``"test"``; ``which`` is ``"adapter"`` or ``"base"``."""

    tuner: Tuner | None
    base: ResolvedModel
    data: SplitData
    max_length: int
    batch_size: int
    seed: int
    system_prompt: str | None
    max_new_tokens: int

    def adapter_proba(self, split: str) -> np.ndarray: ...

    def base_embeddings(self, split: str) -> np.ndarray: ...

    def base_embed_texts(self, texts: list[str], what: str = "base, other texts") -> np.ndarray:
        """The frozen base model's embeddings of any texts, each distinct text embedded once
        (shared with ``base_embeddings``); ``what`` labels the progress bar. Optional for
        other implementations: ``kfold`` falls back to a session of its own without it."""
        ...

    def base_probe_proba(self, split: str) -> np.ndarray: ...

    def generate(self, prompts: list[str], *, which: str = "adapter",
                 max_new_tokens: int | None = None) -> list[str]: ...

    def sample(self, prompts: list[str], *, which: str = "adapter", n: int = 5, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> list[list[str]]: ...

    def proba_texts(self, texts: list[str], *, which: str = "adapter") -> np.ndarray:
        """Class probabilities on texts that are no split's rows (perturbed inputs, a second
        task): the adapter, or the base model's linear probe on their embeddings."""
        ...

    def answer_logprobs(self, prompts: list[str], answers: list[str], *, which: str = "adapter") -> np.ndarray:
        """Mean per-token log-probability of each answer as the reply to its prompt."""
        ...


@dataclass
class Retrained:
    """A freshly trained adapter: its tuning result, the wall time of the tuning call, and a
    session that scores it (``session.adapter_proba(split)`` / ``session.generate(...)``)."""

    tuning: TuneResult
    seconds: float
    session: Any


class Retrainer(Protocol):
    def train(self, data: SplitData, *, seed: int, name: str, training: TrainingSpec | None = None,
              scored: SplitData | None = None) -> AbstractContextManager[Retrained]:
        """Train on ``data.train`` (``data.validation`` for early stopping) with weights
        initialised from ``seed``; the context's model is gone when the block ends.
        ``name`` names the model in core's degeneracy profiles (e.g. ``"fold 1 adapter"``);
        ``scored`` is what the session scores when it differs from ``data`` (a sample of rows)."""
        ...

    def reusing_base(self) -> AbstractContextManager[None]:
        """Keep the base weights in memory across several trainings (one read from disk)."""
        ...


@dataclass(frozen=True)
class RunAdapter:
    """A finished run's adapter, loaded on the job's base model by the run's own tuner."""

    #: what the tuner's ``load`` returned: the model and its tokenizer
    model: Any
    tokenizer: Any
    #: the run's tuner kind, as its adapter metadata records it
    kind: str
    run_dir: Path
    #: the run directory's name (the run id)
    run_name: str
    #: how long the run's tuning took (``report.json``), None when the run has no report
    tuning_seconds: float | None


class AdapterLoader(Protocol):
    """Core's service for loading another finished run's adapter (``TuneJob.adapters``;
    implemented by ``auditft.run_adapters.RunAdapters`` on the command's plugin manager)."""

    def finished(self, run_dir: Path) -> dict[str, Any]:
        """The adapter metadata of a finished auditft run (or ``RunAdapterError``)."""
        ...

    def check_fits(self, run_dir: Path, meta: dict[str, Any], base: ResolvedModel, data: SplitData) -> None:
        """That the run's adapter fits this job's labels and base weights (or ``RunAdapterError``)."""
        ...

    def load(self, run_dir: Path, base: ResolvedModel, data: SplitData) -> RunAdapter:
        """The run's adapter on ``base``, loaded through the run's own tuner plugin."""
        ...
