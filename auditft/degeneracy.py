"""Core's first question about any model an audit scores: is this a real model?

A model is *degenerate* on some data when its outputs do not depend on the input in any way
that matters. Core decides it, not the audits: every model session handed to an audit is
wrapped in an ``ObservedSession`` that records what each scored model (the adapter, the base
model, each k-fold model) predicted, and ``classification_profile`` / ``generation_profile``
apply the rules below. Audits only declare, at registration (``trivial_metrics``), which of
their metrics a degenerate model satisfies trivially; the gate then never lets a check on such
a metric pass when a model behind it is degenerate.

Rules (``RULES`` is the text the report and docs/audits.md show):

classification, on the rows the model was scored on
  * one class: one label for at least ``ONE_CLASS_SHARE`` (95%) of the predictions;
  * no better than chance: the lower end of the accuracy's 95% CI (percentile bootstrap) is
    not above the majority-class rate AND the lower end of the macro-F1's CI is not above the
    best macro-F1 an input-free predictor gets (the maximum over "always class c", "random
    with the class priors" and "uniform random", each scored on its expected confusion matrix).
    Both must fail: on imbalanced data a real model may not beat the majority rate in accuracy,
    but it does in macro-F1.

generation, on the prompts the model answered
  * abstains on at least ``ABSTAIN_SHARE`` (95%) of the answerable prompts (a prompt is
    answerable unless its reference answer in the test split is itself an abstention or the
    audit declared it unanswerable);
  * empty answers to at least ``EMPTY_SHARE`` (95%) of the prompts;
  * the same normalised answer to at least ``IDENTICAL_SHARE`` (95%) of at least
    ``MIN_PROMPTS`` distinct prompts, unless the reference answers are that uniform too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike
    
    from auditft.data import SplitData
    from auditft.jobs import Models

ONE_CLASS_SHARE = 0.95
ABSTAIN_SHARE = 0.95
EMPTY_SHARE = 0.95
IDENTICAL_SHARE = 0.95
#: fewer distinct prompts than this cannot show "identical answers" (two prompts agreeing is normal)
MIN_PROMPTS = 5

RULES = (
    f"Degenerate model (decided by core for every model an audit scores: the adapter, the base "
    f"model, each k-fold model). Classification: one label for at least {ONE_CLASS_SHARE:.0%} of the "
    "predictions, or both the accuracy's 95% CI lower bound not above the majority-class rate and the "
    "macro-F1's lower bound not above the best input-free predictor's macro-F1 (always one class, random "
    f"with the class priors, uniform random). Generation: abstention on at least {ABSTAIN_SHARE:.0%} of "
    f"the answerable prompts, empty answers to at least {EMPTY_SHARE:.0%} of the prompts, or one "
    f"normalised answer to at least {IDENTICAL_SHARE:.0%} of {MIN_PROMPTS} or more distinct prompts (unless "
    "the references are that uniform). A check on a metric its audit declares trivially satisfied by a "
    "degenerate model (e.g. parity and odds differences, fold spread, hallucination rate) is fail whenever "
    "a model that audit scored (other than the base model; the adapter when core saw it score none) is "
    "degenerate; the core check core:model_not_degenerate fails when the adapter is degenerate on the test split."
)


@dataclass(frozen=True)
class Profile:
    """What core found about one model's outputs on one set of rows or prompts."""

    model: str
    task: str
    split: str
    n: int
    degenerate: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(model=str(data["model"]), task=str(data["task"]), split=str(data["split"]),
                   n=int(data["n"]), degenerate=bool(data["degenerate"]),
                   reasons=[str(r) for r in data.get("reasons", [])], figures=dict(data.get("figures", {})))

    @property
    def is_base(self) -> bool:
        """Base-model figures are comparisons, not the model under test."""
        return self.model == "base" or self.model.endswith(" base")

    def summary(self) -> str:
        """One line: the reasons when degenerate, else what shows the model is not."""
        if self.degenerate:
            return "; ".join(self.reasons)
        f = self.figures
        if self.task == "classification":
            return (f"the {self.model} predicts {f['classes_predicted']} classes (top {f['top_label']!r} "
                    f"{f['top_share']:.0%}); accuracy 95% CI {f['accuracy_ci'][0]:.3f}-{f['accuracy_ci'][1]:.3f} vs "
                    f"majority rate {f['majority_rate']:.3f}, macro-F1 CI {f['macro_f1_ci'][0]:.3f}-"
                    f"{f['macro_f1_ci'][1]:.3f} vs chance {f['chance_macro_f1']:.3f}")
        return (f"the {self.model} abstains on {f['abstain_share']:.0%} of {f['answerable']} answerable prompts; "
                f"top answer covers {f['top_share']:.0%} of {self.n}")


# -- the rules (pure: unit-tested without a model) -----------------------------------------------


def chance_macro_f1(y_true: ArrayLike, k: int) -> float:
    """Best macro-F1 of an input-free predictor on these labels: the maximum over "always class
    c", "random with the class priors" and "uniform random" (expected confusion matrices)."""
    import numpy as np

    from auditft.stats import macro_f1_from

    counts = np.bincount(y_true, minlength=k).astype(float)
    priors = counts / max(counts.sum(), 1.0)
    candidates = [np.eye(k)[c] for c in range(k)] + [priors, np.full(k, 1.0 / k)]
    return float(max(macro_f1_from(counts[:, None] * q[None, :]) for q in candidates))


def classification_profile(model: str, y_true: ArrayLike, y_pred: ArrayLike, labels: list[str], *, split: str = "test",
                           seed: int = 0, n_boot: int = 1000) -> Profile | None:
    """Apply the classification rules to ``model``'s predictions; None for no rows."""
    import numpy as np

    from auditft.stats import bootstrap_metrics

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n, k = len(y_true), max(len(labels), 2)
    if n == 0:
        return None
    predicted = np.bincount(y_pred, minlength=k)
    top = int(predicted.argmax())
    top_share = float(predicted[top] / n)
    truth = np.bincount(y_true, minlength=k)
    majority = int(truth.argmax())
    majority_rate = float(truth[majority] / n)
    figures = bootstrap_metrics(y_true, y_pred, k, seed=seed, n_boot=n_boot)
    acc, f1 = figures["accuracy"], figures["macro_f1"]
    chance = chance_macro_f1(y_true, k)
    name = lambda i: labels[i] if i < len(labels) else str(i)  # noqa: E731
    reasons = []
    if top_share >= ONE_CLASS_SHARE:
        reasons.append(f"the {model} predicts {name(top)!r} for {top_share:.0%} of {n} rows")
    if acc["ci_low"] <= majority_rate and f1["ci_low"] <= chance:
        reasons.append(f"the {model} is no better than chance: accuracy {acc['value']:.3f} (95% CI "
                       f"{acc['ci_low']:.3f}-{acc['ci_high']:.3f}) not above the majority-class rate "
                       f"{majority_rate:.3f} ({name(majority)!r}), macro-F1 {f1['value']:.3f} (CI "
                       f"{f1['ci_low']:.3f}-{f1['ci_high']:.3f}) not above chance {chance:.3f}")
    return Profile(model=model, task="classification", split=split, n=n, degenerate=bool(reasons), reasons=reasons,
                   figures={"top_label": name(top), "top_share": top_share,
                            "classes_predicted": int((predicted > 0).sum()),
                            "majority_label": name(majority), "majority_rate": majority_rate,
                            "accuracy": acc["value"], "accuracy_ci": [acc["ci_low"], acc["ci_high"]],
                            "macro_f1": f1["value"], "macro_f1_ci": [f1["ci_low"], f1["ci_high"]],
                            "chance_macro_f1": chance})


def generation_profile(model: str, prompts: list[str], answers: list[str], *,
                       references: list[str | None] | None = None, unanswerable: set[str] | None = None,
                       split: str = "prompts") -> Profile | None:
    """Apply the generation rules to ``model``'s answers; None for no prompts. ``references``
    (None where unknown) make a prompt whose reference is an abstention unanswerable."""
    from collections import Counter

    from auditft.textmetrics import is_abstention, normalize

    n = len(prompts)
    if n == 0:
        return None
    references = references if references is not None else [None] * n
    unanswerable = unanswerable or set()
    answerable = [i for i in range(n) if prompts[i] not in unanswerable
                  and not (references[i] is not None and is_abstention(references[i]))]  # type: ignore[arg-type]
    abstained = sum(is_abstention(answers[i]) for i in answerable)
    abstain_share = abstained / len(answerable) if answerable else 0.0
    empty_share = sum(not a.strip() for a in answers) / n
    top_answer, top_count = Counter(normalize(a) for a in answers).most_common(1)[0]
    top_share = top_count / n
    known = [normalize(r) for r in references if r is not None]
    reference_share = Counter(known).most_common(1)[0][1] / len(known) if known else 0.0
    reasons = []
    if answerable and abstain_share >= ABSTAIN_SHARE:
        reasons.append(f"the {model} abstains on {abstain_share:.0%} of {len(answerable)} answerable prompts")
    if empty_share >= EMPTY_SHARE:
        reasons.append(f"the {model} gives an empty answer to {empty_share:.0%} of {n} prompts")
    elif (len(set(prompts)) >= MIN_PROMPTS and top_share >= IDENTICAL_SHARE and reference_share < IDENTICAL_SHARE
          and not (answerable and abstain_share >= ABSTAIN_SHARE)):
        reasons.append(f"the {model} gives the same answer ({top_answer[:60]!r}) to {top_share:.0%} of {n} prompts")
    return Profile(model=model, task="generation", split=split, n=n, degenerate=bool(reasons), reasons=reasons,
                   figures={"answerable": len(answerable), "abstain_share": abstain_share, "empty_share": empty_share,
                            "top_answer": top_answer[:200], "top_share": top_share,
                            "reference_top_share": reference_share})


# -- recording what audits score -------------------------------------------------------------------


class Recorder:
    """Collects, per audit, the outputs of every model scored through an ``ObservedSession``."""

    def __init__(self, labels: list[str], seed: int) -> None:
        self.labels = list(labels)
        self.seed = seed
        self.audit = "core"
        self._seen: dict[str, dict[tuple[str, str], Any]] = {}
        self._unanswerable: set[str] = set()

    def start(self, audit: str) -> None:
        self.audit = audit
        self._seen[audit] = {}
        self._unanswerable = set()

    def classification(self, model: str, split: str, y_true: ArrayLike, y_pred: ArrayLike) -> None:
        self._seen.setdefault(self.audit, {})[(model, split)] = ("classification", y_true, y_pred)

    def generation(self, model: str, prompts: list[str], answers: list[str], references: list[str | None]) -> None:
        seen = self._seen.setdefault(self.audit, {})
        _, old_p, old_a, old_r = seen.get((model, "prompts"), ("generation", [], [], []))
        known = set(old_p)
        fresh = [(p, a, r) for p, a, r in zip(prompts, answers, references) if p not in known]
        seen[(model, "prompts")] = ("generation", old_p + [p for p, _, _ in fresh], old_a + [a for _, a, _ in fresh],
                                    old_r + [r for _, _, r in fresh])

    def declare_unanswerable(self, prompts: list[str]) -> None:
        self._unanswerable.update(prompts)

    def profiles(self, audit: str | None = None) -> list[Profile]:
        """The profiles of every model scored during ``audit`` (default: the current one)."""
        out: list[Profile] = []
        for (model, split), record in self._seen.get(audit or self.audit, {}).items():
            if record[0] == "classification":
                profile = classification_profile(model, record[1], record[2], self.labels, split=split, seed=self.seed)
            else:
                profile = generation_profile(model, record[1], record[2], references=record[3],
                                             unanswerable=self._unanswerable)
            if profile is not None:
                out.append(profile)
        return out


class ObservedSession:
    """A model session as core hands it to audits: every call passes through unchanged, and the
    predictions and answers of each scored model are recorded for the degeneracy rules.

    ``observe(session, name=..., data=...)`` wraps a further session an audit builds (k-fold
    models); ``declare_unanswerable(prompts)`` tells core that abstaining on those prompts is
    correct (the hallucination audit's unanswerable probes)."""

    def __init__(self, session: Models, recorder: Recorder, *, name: str = "adapter",
                 data: SplitData | None = None) -> None:
        self._session = session
        self._recorder = recorder
        self._name = name
        self._data = data if data is not None else getattr(session, "data", None)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._session, attr)

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    def _model(self, which: str) -> str:
        if which == "adapter":
            return self._name
        return "base" if self._name == "adapter" else f"{self._name.removesuffix(' adapter')} base"

    def _labels(self, split: str) -> Any:
        import numpy as np

        rows = list(getattr(self._data, split, None) or [])
        if not rows or any(ex.label is None for ex in rows):
            return None
        return np.asarray([ex.label for ex in rows], dtype=np.int64)

    def _record_proba(self, which: str, split: str, proba: np.ndarray) -> None:
        import numpy as np

        y = self._labels(split)
        arr = np.asarray(proba)
        if y is not None and arr.ndim == 2 and len(arr) == len(y):
            self._recorder.classification(self._model(which), split, y, arr.argmax(axis=1))

    def adapter_proba(self, split: str) -> Any:
        proba = self._session.adapter_proba(split)
        self._record_proba("adapter", split, proba)
        return proba

    def base_probe_proba(self, split: str) -> Any:
        proba = self._session.base_probe_proba(split)
        self._record_proba("base", split, proba)
        return proba

    def generate(self, prompts: list[str], *, which: str = "adapter", max_new_tokens: int | None = None) -> list[str]:
        # passed on only when given: a session may not take it (test doubles, older plugins)
        answers = (self._session.generate(prompts, which=which) if max_new_tokens is None
                   else self._session.generate(prompts, which=which, max_new_tokens=max_new_tokens))
        # references of the evaluation rows only: a training answer says what the model was
        # taught, not whether the question has an answer
        references = {ex.text: ex.response for ex in getattr(self._data, "test", None) or []
                      if getattr(ex, "response", None) is not None}
        if isinstance(answers, list) and len(answers) == len(prompts) and all(isinstance(a, str) for a in answers):
            self._recorder.generation(self._model(which), list(prompts), list(answers),
                                      [references.get(p) for p in prompts])
        return answers

    def declare_unanswerable(self, prompts: list[str]) -> None:
        self._recorder.declare_unanswerable(list(prompts))

    def observe(self, session: Models, *, name: str, data: SplitData | None = None) -> ObservedSession:
        return ObservedSession(session, self._recorder, name=name, data=data)


def scored_models(result_dict: dict[str, Any]) -> list[Profile]:
    """The profiles core stored on an audit result (``AuditResult.scored_models``)."""
    return [Profile.from_dict(p) for p in result_dict.get("scored_models", []) or []]


# -- training health -------------------------------------------------------------------------------

#: a loss that fell by less than this share from the first to the last quarter of training is flat
FLAT_LOSS_DROP = 0.10

ADVICE = ("What usually helps: more optimisation steps (more epochs or more data; a LoRA on MiniLM needs on "
          "the order of 100+ steps to leave the majority class), a higher learning rate, and checking that the "
          "labels carry signal at all (the bag-of-words baseline in the accuracy section says whether the text "
          "predicts the label).")


def training_health(loss_curve: list[Any], subject: Profile | None) -> dict[str, Any]:
    """Did the adapter learn? Flat loss (the mean of the last quarter of logged losses is less
    than ``FLAT_LOSS_DROP`` below the first quarter's, with at least 4 points) and a degenerate
    adapter on the test split are the two signs; the message says which and what helps."""
    losses = [float(v) for _, v in loss_curve]
    flat = None
    first = last = None
    if len(losses) >= 4:
        q = max(1, len(losses) // 4)
        first, last = sum(losses[:q]) / q, sum(losses[-q:]) / q
        flat = bool(first > 0 and (first - last) / first < FLAT_LOSS_DROP)
    degenerate = None if subject is None else subject.degenerate
    signs = []
    if flat:
        signs.append(f"its training loss stayed flat ({first:.3f} in the first quarter of logged steps, "
                     f"{last:.3f} in the last)")
    if degenerate and subject is not None:
        signs.append("; ".join(subject.reasons))
    learned = None if flat is None and degenerate is None else not signs
    message = ("The adapter did not learn: " + "; ".join(signs) + ". " + ADVICE) if signs else ""
    return {"learned": learned, "flat_loss": flat, "loss_first_quarter": first, "loss_last_quarter": last,
            "degenerate": degenerate, "message": message}
