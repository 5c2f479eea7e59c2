"""Model sessions that stand in for ``auditft.inference.ModelSession`` in ``check_audit`` (a
working fake, a constant model, one that always fails) and the audit job that carries one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from auditft.conformance.common import (
    CONSTANT_ANSWER,
    HOSTILE,
    HOSTILE_GROUP,
    HOSTILE_LABEL,
    HOSTILE_TEXT,
    INJECTED,
    toy_suite,
)

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

    from auditft.data import Example, SplitData
    from auditft.jobs import AuditJob

#: builds the session an audit gets as ``job.models`` from the toy data and the suite's seed (a
#: fake answers what audits ask of a session without being a complete ``Models``, hence Any)
SessionFactory = Callable[["SplitData", int], Any]
SPLITS = ("train", "validation", "test")
#: the group column ``plant_hostile`` adds to the toy data, whose values carry markup
PLANTED_GROUP = "site"


class FakeModelSession:
    """Stands in for ``auditft.inference.ModelSession``: deterministic answers and probabilities,
    no model. Generated answers include ``HOSTILE`` markup, which report sections must escape.

    ``scored`` records what the audit asked for, as ``(which, method, split)``: ``which`` is
    ``"adapter"`` or ``"base"``, ``split`` the data split scored (``"other"`` for prompts that are
    no example's text, such as probes), so the kit can tell an audit that scores the train split."""

    def __init__(self, data: SplitData, seed: int = 0) -> None:
        self.data = data
        self.seed = seed
        self.scored: list[tuple[str, str, str]] = []

    def _split(self, split: str) -> list[Example]:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train', 'validation' or 'test', not {split!r}")
        return list(getattr(self.data, split))

    def _record(self, which: str, method: str, split: str) -> None:
        self._split(split)
        self.scored.append((which, method, split))

    def _record_prompts(self, which: str, method: str, prompts: list[str]) -> None:
        where = {ex.text: split for split in reversed(SPLITS) for ex in getattr(self.data, split)}
        for split in sorted({where.get(p, "other") for p in prompts}):
            self.scored.append((which, method, split))

    def _proba(self, split: str, shift: int) -> np.ndarray:
        import numpy as np

        rows = self._split(split)
        k = max(len(self.data.labels), 2)
        rng = np.random.default_rng(self.seed + shift)
        proba = rng.dirichlet(np.ones(k), size=len(rows))
        for i, ex in enumerate(rows):  # mostly right, so metrics are neither 0 nor 1
            if ex.label is not None and i % 3:
                proba[i] = proba[i] * 0.2
                proba[i, ex.label] += 0.8
        return proba

    def adapter_proba(self, split: str) -> np.ndarray:
        self._record("adapter", "adapter_proba", split)
        return self._proba(split, 0)

    def base_probe_proba(self, split: str) -> np.ndarray:
        self._record("base", "base_probe_proba", split)
        return self._proba(split, 1)

    def base_embeddings(self, split: str) -> np.ndarray:
        import numpy as np

        self._record("base", "base_embeddings", split)
        return np.random.default_rng(self.seed).normal(size=(len(self._split(split)), 8))

    def _answer(self, prompt: str, which: str, i: int) -> str:
        reference = {ex.text: ex.response for ex in self.data.test if ex.response}.get(prompt)
        if i % 4 == 0:  # the first answer of every call, so any example shown carries it
            return f"{HOSTILE} {prompt}"
        if reference and (which == "adapter" or i % 2):
            return reference
        return "unknown"

    def generate(self, prompts: list[str], *, which: str = "adapter", max_new_tokens: int | None = None) -> list[str]:
        self._record_prompts(which, "generate", prompts)
        return [self._answer(p, which, i) for i, p in enumerate(prompts)]

    def sample(self, prompts: list[str], *, which: str = "adapter", n: int = 5, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> list[list[str]]:
        self._record_prompts(which, "sample", prompts)
        return [[self._answer(p, which, i + j) for j in range(n)] for i, p in enumerate(prompts)]


    def proba_texts(self, texts: list[str], *, which: str = "adapter") -> np.ndarray:
        """Probabilities that depend on the text (a seeded hash of it), mostly on the label of
        the test row with the same text, so a perturbation can flip a prediction."""
        import hashlib

        import numpy as np

        self._record_prompts(which, "proba_texts", texts)
        k = max(len(self.data.labels), 2)
        labels = {ex.text: ex.label for split in SPLITS for ex in getattr(self.data, split)}
        proba = np.zeros((len(texts), k))
        for i, text in enumerate(texts):
            digest = int(hashlib.sha256(f"{which}:{text}".encode()).hexdigest()[:8], 16)
            rng = np.random.default_rng(self.seed + digest)
            proba[i] = rng.dirichlet(np.ones(k))
            label = labels.get(text)
            if label is not None and digest % 3:
                proba[i] = proba[i] * 0.2
                proba[i, label] += 0.8
        return proba

    def answer_logprobs(self, prompts: list[str], answers: list[str], *, which: str = "adapter") -> np.ndarray:
        """A log-probability per answer in (-3, 0): higher for answers that match the reference."""
        import numpy as np

        self._record_prompts(which, "answer_logprobs", prompts)
        references = {ex.text: ex.response for ex in self.data.test if ex.response}
        return np.array([-0.1 - 0.3 * (i % 3) if answers[i] == references.get(p) else -1.5 - 0.5 * (i % 3)
                         for i, p in enumerate(prompts)], dtype=float)


class ConstantModelSession(FakeModelSession):
    """A model that does nothing: the adapter predicts the first label for every row and answers
    every prompt with ``CONSTANT_ANSWER``; the base model is ``FakeModelSession``'s."""

    def adapter_proba(self, split: str) -> np.ndarray:
        import numpy as np

        proba = np.zeros((len(self._split(split)), max(len(self.data.labels), 2)))
        proba[:, 0] = 1.0
        return proba

    def proba_texts(self, texts: list[str], *, which: str = "adapter") -> np.ndarray:
        import numpy as np

        if which != "adapter":
            return super().proba_texts(texts, which=which)
        proba = np.zeros((len(texts), max(len(self.data.labels), 2)))
        proba[:, 0] = 1.0
        return proba

    def answer_logprobs(self, prompts: list[str], answers: list[str], *, which: str = "adapter") -> np.ndarray:
        import numpy as np

        if which != "adapter":
            return super().answer_logprobs(prompts, answers, which=which)
        return np.full(len(prompts), -0.05)

    def generate(self, prompts: list[str], *, which: str = "adapter", max_new_tokens: int | None = None) -> list[str]:
        if which != "adapter":
            return super().generate(prompts, which=which, max_new_tokens=max_new_tokens)
        return [CONSTANT_ANSWER for _ in prompts]

    def sample(self, prompts: list[str], *, which: str = "adapter", n: int = 5, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> list[list[str]]:
        if which != "adapter":
            return super().sample(prompts, which=which, n=n, temperature=temperature, max_new_tokens=max_new_tokens)
        return [[CONSTANT_ANSWER] * n for _ in prompts]


class FailingModelSession:
    """Every model call raises: an audit must let that surface as an ``error`` result.
    ``calls`` counts the calls (an audit that never calls the model has nothing to swallow)."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, attr: str) -> Callable[..., NoReturn]:
        def fail(*args: object, **kwargs: object) -> NoReturn:
            self.calls += 1
            raise RuntimeError(INJECTED)

        return fail


def fake_job(task: str, opts: BaseModel, folder: Path, session_factory: SessionFactory) -> AuditJob:
    """An audit job on toy data for ``task`` in ``folder``, whose ``models`` is the session the
    factory builds; ``retrain`` is core's retraining service, as in a real run (the fakes have
    no tuner to retrain with: audits that retrain are checked with ``model="tiny"``). The data
    carry hostile markup (``plant_hostile``) that every report section must escape."""
    from auditft.data import load_data
    from auditft.jobs import AuditJob
    from auditft.retraining import CoreRetrainer
    from auditft.suite import load_suite

    folder.mkdir(exist_ok=True)
    suite = load_suite(toy_suite(folder, task, "model", {"kind": "lora"}, [{"kind": "accuracy"}]))
    data = load_data(suite)
    plant_hostile(data, opts)
    session = session_factory(data, suite.seed)
    work_dir = folder / "work"
    job = AuditJob(suite=suite, task=task, data=data, options=opts, seed=suite.seed, models=session,
                   work_dir=work_dir, retrain=CoreRetrainer(suite, session, work_dir))
    job.work_dir.mkdir(exist_ok=True)
    return job


def plant_hostile(data: SplitData, opts: BaseModel | None = None) -> None:
    """Markup in the toy data, as a dataset may hold it: after every example's text
    (``HOSTILE_TEXT``), in every label name (``HOSTILE_LABEL``, unless the audit's options name
    a label, which must still match) and in the values of an extra group column, ``PLANTED_GROUP``
    (``HOSTILE_GROUP``; the toy data's own group columns and values stay as they are)."""
    named = _strings(opts.model_dump(mode="json")) if opts is not None else set()
    if not named & set(data.labels):
        data.labels = [f"{label} {HOSTILE_LABEL}" for label in data.labels]
    if PLANTED_GROUP not in data.group_columns:
        data.group_columns = [*data.group_columns, PLANTED_GROUP]
    for split in (data.train, data.validation, data.test):
        for i, ex in enumerate(split):
            ex.text = f"{ex.text} {HOSTILE_TEXT}"
            ex.groups = {**ex.groups, PLANTED_GROUP: f"{('north', 'south')[i % 2]} {HOSTILE_GROUP}"}


def _strings(value: object) -> set[str]:
    """Every string inside a JSON value (the options' dump)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in [*value.keys(), *value.values()])) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()
