"""Core's retraining service: train a fresh adapter on given rows with a given seed, and get
back a scored model, without an audit touching tuners, run directories or seeding.

k-fold cross-validation (and any audit that needs models trained on other data) asks
``job.retrain.train(data, seed=...)``; core seeds, trains with the suite's tuner and settings
into a scratch folder under the run's ``work/``, serves the model through a session that core
observes (degeneracy profiles, like every model it serves), and removes the folder when the
audit is done with the model.
"""

from __future__ import annotations

import gc
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft import distributed
from auditft.jobs import Retrained, Retrainer

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.inference import ModelSession
    from auditft.jobs import Models
    from auditft.suite import Suite, TrainingSpec


class CoreRetrainer(Retrainer):
    """Retrains with the run's tuner and options, the suite's training settings and the run
    session's inference settings; scratch under ``work_dir / 'retrain'``."""

    def __init__(self, suite: Suite, models: Models, work_dir: Path) -> None:
        self.suite = suite
        self.models = models
        self.root = Path(work_dir) / "retrain"

    def reusing_base(self) -> AbstractContextManager[None]:
        from auditft.models import reusing_base_weights

        return reusing_base_weights()

    @contextmanager
    def train(self, data: SplitData, *, seed: int, name: str, training: TrainingSpec | None = None,
              scored: SplitData | None = None) -> Iterator[Retrained]:
        """``Retrainer.train``; ``scored`` is what the session scores when it is not ``data``
        (k-fold's ``train_accuracy_rows: sample`` scores a sample of the training rows)."""
        from auditft.inference import ModelSession
        from auditft.jobs import TuneJob
        from auditft.seeding import seed_everything

        tuner = self.models.tuner
        options = getattr(tuner, "options", None)
        if tuner is None or options is None:
            raise ValueError(f"retraining: the tuner object {type(tuner).__name__} does not expose its validated "
                             "options as `.options`; core cannot train fresh adapters with the suite's settings")
        folder = self.root / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model")
        adapter_dir = folder / "adapter"
        if distributed.is_main():  # data-parallel runs: one process manages the files
            shutil.rmtree(folder, ignore_errors=True)
            adapter_dir.mkdir(parents=True)
        distributed.barrier()
        session: ModelSession | None = None
        retrained: Retrained | None = None
        try:
            with distributed.adapter_target(adapter_dir) as target:
                seed_everything(seed)  # before the fresh head / adapter weights are created
                started = time.perf_counter()
                tuning = tuner.tune(TuneJob.for_suite(self.suite, self.models.base, data, options,
                                                      adapter_dir=target, work_dir=folder, training=training))
                seconds = time.perf_counter() - started
            scored = data if scored is None else scored
            session = ModelSession.for_suite(self.suite, self.models.base, scored, tuner=tuner,
                                             adapter_dir=adapter_dir)
            retrained = Retrained(tuning, seconds, self._observed(session, name, scored))
            yield retrained
        finally:
            if retrained is not None:
                retrained.session = None  # the caller may still hold the Retrained: not its model
            session = None
            gc.collect()  # this model goes before the next one is built
            distributed.barrier()  # every process has read the adapter
            if distributed.is_main():
                shutil.rmtree(folder, ignore_errors=True)  # adapters are large; scratch only
                _remove_if_empty(self.root)  # no empty scratch folder once the last model is gone

    def _observed(self, session: ModelSession, name: str, data: SplitData) -> Any:
        """Served through core's recorder when the run session is observed (``observe``), so
        the retrained model's predictions are profiled like every other model core serves."""
        observe = getattr(self.models, "observe", None)
        return observe(session, name=name, data=data) if callable(observe) else session


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # missing, or another model's folder is still in it
        pass
