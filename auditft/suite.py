"""YAML suite -> validated ``Suite`` (pydantic, unknown keys rejected).

Errors are one line: ``<file>: <key path>: <problem>``. Plugin options are validated by the
pydantic model each plugin registered, so the key path reaches inside them too.
"""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditft.errors import SuiteError

if TYPE_CHECKING:
    from auditft.registry import AuditRegistry, Entry, TunerRegistry
    from auditft.registry import PluginSet

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: accelerate's placement strategies accepted as ``model.device_map``
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE = re.compile(r"^(cpu|disk|mps|cuda(:\d+)?)$")


def parse_duration(text: str | int | float) -> float:
    """'0s', '30m', '24h', '7d', '2w' (or a number of seconds) -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"invalid duration {text!r}; use e.g. 0s, 30m, 24h, 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelSpec(_Strict):
    base: str = Field(min_length=1)
    revision: str | None = None
    #: off unless the suite turns it on; the report banner says so when on
    trust_remote_code: bool = False
    #: placement of a model larger than one device (accelerate's ``device_map``): a strategy
    #: (``auto``, ``balanced``, ``balanced_low_0``, ``sequential``) or a ``{module: device}``
    #: map (device: a GPU index, ``cpu``, ``disk`` or ``cuda:N``). None (default): the whole
    #: model on one device (the GPU when CUDA is available). Single-process runs only.
    device_map: str | dict[str, int | str] | None = None

    @field_validator("device_map", mode="before")
    @classmethod
    def _device_map(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            if value not in DEVICE_MAP_STRATEGIES:
                raise ValueError(f"unknown strategy {value!r}; use one of {', '.join(DEVICE_MAP_STRATEGIES)} "
                                 "or a {module: device} map")
            return value
        if not isinstance(value, dict) or not value:
            raise ValueError("must be a strategy name or a non-empty {module: device} map")
        for module, device in value.items():
            if not isinstance(module, str):
                raise ValueError(f"module name {module!r} must be a string ('' for the whole model)")
            if isinstance(device, bool) or not (isinstance(device, int) and device >= 0
                                                or isinstance(device, str) and _DEVICE.match(device)):
                raise ValueError(f"{module!r}: device {device!r} must be a GPU index, 'cpu', 'disk' or 'cuda:N'")
        return value


class DataSpec(_Strict):
    train: str
    test: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] | None = None
    prompt_column: str = "prompt"
    response_column: str = "response"
    group_columns: list[str] = Field(default_factory=list)
    #: rows that share a value here are correlated (one patient, one document): the accuracy
    #: audit's bootstrap resamples these clusters instead of rows (every row needs a value)
    cluster_column: str | None = Field(default=None, min_length=1)
    validation_fraction: float = Field(default=0.15, ge=0.0, lt=0.5)
    #: used only when ``test`` is absent: the share of train split off as the test set
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    seed: int = 13
    #: a row whose text is longer than this many characters is refused as malformed (e.g. a
    #: broken CSV quote swallowing a file); default 50 x tuner.training.max_length
    max_chars: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _cluster_column_distinct(self) -> DataSpec:
        taken = {self.text_column: "data.text_column", self.label_column: "data.label_column",
                 self.prompt_column: "data.prompt_column", self.response_column: "data.response_column"}
        if self.cluster_column in taken:
            raise ValueError(f"cluster_column {self.cluster_column!r} is also {taken[self.cluster_column]}")
        return self

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if len(value) < 2:
                raise ValueError("needs at least two labels")
            if len(set(value)) != len(value):
                raise ValueError("labels must be unique")
        return value


class TrainingSpec(_Strict):
    epochs: float = Field(default=3.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    learning_rate: float = Field(default=2.0e-4, gt=0)
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=128, ge=8, le=8192)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    logging_steps: int = Field(default=10, ge=1)
    #: defaults to ``data.seed``
    seed: int | None = None
    #: save a resumable checkpoint (weights, optimizer, scheduler, RNG) every N optimizer
    #: steps under ``work/checkpoints``; 0 disables. ``auditft run --resume`` continues there.
    checkpoint_steps: int = Field(default=100, ge=0)
    #: evaluate on the validation split every N steps (default: once per epoch)
    eval_steps: int | None = Field(default=None, ge=1)
    #: stop when validation loss has not improved for this many evaluations (best weights kept)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    #: numeric precision of training and inference: ``auto`` (default) is bf16 on a CUDA device
    #: that supports it, else fp32; ``bf16`` also runs on CPU (autocast); ``fp16`` needs CUDA.
    #: Trainable parameters stay in fp32 (mixed precision); qlora computes in this precision.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    #: ``random``: rows in a seeded random order; ``by_length``: batches of rows of similar
    #: token length in a seeded random order (less padding, faster; auditft.batching);
    #: ``random_halves`` (classification): random batches, each computed as two halves of
    #: sorted length (the same gradient with less padding)
    batching: Literal["random", "by_length", "random_halves"] = "random"


class GenerationSpec(_Strict):
    """How generation-task prompts are formatted and answered, in training and in audits."""

    #: system message put before every prompt by the chat template (None: the template's own)
    system_prompt: str | None = None
    max_new_tokens: int = Field(default=48, ge=1, le=4096)


class TunerSpec(_Strict):
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)
    training: TrainingSpec = Field(default_factory=TrainingSpec)


class GateSpec(_Strict):
    metric: str
    min: float | None = None
    max: float | None = None
    rationale: str = Field(min_length=1)
    #: power check on proportions (``auditft.power``): the gate must be able to pass a model this
    #: much better than its threshold at the test data's size (default 0.10)
    margin: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_bound(self) -> GateSpec:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of 'min' or 'max'")
        return self

    @property
    def op(self) -> str:
        return "min" if self.min is not None else "max"

    @property
    def threshold(self) -> float:
        return float(self.min if self.min is not None else self.max)  # type: ignore[arg-type]


#: how long one audit may run before core stops it and records an ``error`` check
DEFAULT_AUDIT_TIMEOUT = "4h"


class AuditSpec(_Strict):
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)
    gates: list[GateSpec] = Field(default_factory=list)
    #: a required audit that produces no result blocks the gate
    required: bool = True
    #: wall-clock limit for this audit (e.g. 30m, 2h); past it the audit's checks are ``error``
    timeout: str = DEFAULT_AUDIT_TIMEOUT
    #: data-stage audits only: ``stop`` (default) ends the run before tuning when a check of
    #: this audit does not pass; ``continue`` records the result and tunes anyway
    on_fail: Literal["stop", "continue"] | None = None
    #: apply the gates the audit declares by default (e.g. hallucination: answerable accuracy
    #: must not collapse); ``false`` turns them off explicitly, on the record of the suite
    default_gates: bool = True

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("timeout must be above 0s")
        return value

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    @property
    def stops_on_fail(self) -> bool:
        return self.on_fail != "continue"

    def gates_with_defaults(self, default_gates: Sequence[Mapping[str, Any]] | None) -> list[GateSpec]:
        """The suite's gates for this audit, then the audit's declared default gates on metrics
        the suite does not gate itself (none when the suite says ``default_gates: false``)."""
        gates = list(self.gates)
        if default_gates is None or not self.default_gates:
            return gates
        gated = {g.metric for g in gates}
        return gates + [GateSpec(**g) for g in default_gates if g["metric"] not in gated]


class ReleaseSpec(_Strict):
    review_window: str = "24h"
    approvals_required: int = Field(default=1, ge=1)
    four_eyes: bool = True
    approval_expires: str = "30d"
    #: reviewer name -> base64 ed25519 public key (``auditft keygen``); listed reviewers must sign
    reviewer_keys: dict[str, str] = Field(default_factory=dict)
    #: when true, every reviewer must be listed in ``reviewer_keys`` and sign
    require_signatures: bool = False

    @field_validator("review_window", "approval_expires")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def review_window_seconds(self) -> float:
        """How long after the gate a release must wait (report key ``release.review_window_seconds``)."""
        return parse_duration(self.review_window)

    @property
    def approval_expires_seconds(self) -> float:
        """How long an approval stays live (report key ``release.approval_expires_seconds``)."""
        return parse_duration(self.approval_expires)


class Suite(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    task: Literal["classification", "generation"]
    description: str = ""
    model: ModelSpec
    data: DataSpec
    tuner: TunerSpec
    audits: list[AuditSpec] = Field(min_length=1)
    release: ReleaseSpec = Field(default_factory=ReleaseSpec)
    #: multiple-testing correction across the family of gated checks: ``holm`` demotes a pass
    #: to ``insufficient`` unless it survives Holm's step-down at 5% (``auditft.gate``); ``none``
    #: (default) gates each check at its own 95% CI
    gate_correction: Literal["none", "holm"] = "none"
    generation: GenerationSpec = Field(default_factory=GenerationSpec)

    #: where the suite file lives; data paths resolve against it (not part of the YAML)
    _source: Path | None = None

    @property
    def source(self) -> Path:
        return self._source or Path("suite.yaml")

    @property
    def seed(self) -> int:
        return self.tuner.training.seed if self.tuner.training.seed is not None else self.data.seed

    def resolve(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else (self.source.parent / path)

    def resolved_dict(self) -> dict[str, Any]:
        """The suite with data paths made absolute: the copy stored in the run directory."""
        data = self.model_dump(mode="json", by_alias=True)
        data["data"]["train"] = str(self.resolve(self.data.train).resolve())
        if self.data.test:
            data["data"]["test"] = str(self.resolve(self.data.test).resolve())
        local = self.resolve(self.model.base)
        if not self.model.base.startswith("builtin:") and local.exists():
            data["model"]["base"] = str(local.resolve())
        return data


def load_suite(path: str | Path, pm: PluginSet | None = None) -> Suite:
    """Read and validate a suite file; with ``pm``, also check kinds, tasks and options."""
    path = Path(path)
    raw = read_suite_yaml(path)
    if "tuners" in raw:  # several tuners: ``auditft.tuner_list`` expands it into one suite per tuner
        raise SuiteError(f"{path}: tuners: this suite lists several tuners; `auditft run` and "
                         "`auditft validate` take it, one run per tuner")
    suite = parse_suite(raw, path)
    if pm is not None:
        check_plugins(suite, pm)
    return suite


def read_suite_yaml(path: Path) -> dict[str, Any]:
    """The suite file's YAML mapping (one-line errors for a missing file or bad YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"{path}: suite file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read suite file: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(f"{path}: invalid YAML: {where}{' '.join(str(problem).split())}") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite must be a YAML mapping, got {type(raw).__name__}")
    return raw


def parse_suite(raw: dict[str, Any], path: Path) -> Suite:
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(f"{path}: {_first_error(exc)}") from None
    suite._source = path
    return suite


def check_plugins(suite: Suite, pm: PluginSet) -> None:
    """Every kind exists, supports the task, accepts its options, declares its gate metrics."""
    path = suite.source
    entry = pm.tuners.get(suite.tuner.kind)
    if entry is None:
        raise SuiteError(f"{path}: tuner.kind: {_unknown('tuner', suite.tuner.kind, pm.tuners, pm)}")
    _check_task(suite, entry, "tuner", "tuner.kind")
    _validate_options(entry.options, suite.tuner.options, path, "tuner.options")
    if suite.tuner.training.early_stopping_patience and not suite.data.validation_fraction:
        raise SuiteError(f"{path}: tuner.training.early_stopping_patience: early stopping needs a "
                         "validation split; set data.validation_fraction above 0")
    if suite.tuner.training.batching == "random_halves" and suite.task != "classification":
        raise SuiteError(f"{path}: tuner.training.batching: random_halves is for classification suites (a "
                         "generation loss is averaged over the batch's tokens); use random or by_length")
    check_compute(suite)
    seen: set[str] = set()
    for i, audit in enumerate(suite.audits):
        where = f"{path}: audits[{i}]"
        if audit.kind in seen:
            raise SuiteError(f"{where}.kind: audit {audit.kind!r} appears twice")
        seen.add(audit.kind)
        aentry = pm.audits.get(audit.kind)
        if aentry is None:
            raise SuiteError(f"{where}.kind: {_unknown('audit', audit.kind, pm.audits, pm)}")
        _check_task(suite, aentry, "audit", f"audits[{i}].kind")
        _validate_options(aentry.options, audit.options, path, f"audits[{i}].options")
        if audit.on_fail is not None and aentry.stage != "data":
            raise SuiteError(f"{where}.on_fail: only data-stage audits (which run before tuning) can stop "
                             f"a run; {audit.kind!r} runs after tuning")
        for j, gate in enumerate(audit.gates):
            if gate.metric not in aentry.metrics:
                known = ", ".join(sorted(aentry.metrics)) or "none"
                raise SuiteError(
                    f"{where}.gates[{j}].metric: audit {audit.kind!r} has no metric "
                    f"{gate.metric!r} (known: {known})"
                )


def check_compute(suite: Suite) -> None:
    """The precision and placement the suite asks for exist here: fp16 needs CUDA, bf16 a
    CPU or a CUDA device with bf16, and ``model.device_map`` a single-process run (torch is
    imported only when the answer depends on the device)."""
    from auditft import distributed

    path, precision = suite.source, suite.tuner.training.precision
    if precision in ("fp16", "bf16"):
        import torch

        cuda = torch.cuda.is_available()
        if precision == "fp16" and not cuda:
            raise SuiteError(f"{path}: tuner.training.precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
            raise SuiteError(f"{path}: tuner.training.precision: this CUDA device ({torch.cuda.get_device_name()}) "
                             "has no bf16 support; use fp16 or fp32 (or auto)")
    if suite.model.device_map is not None and distributed.enabled():
        raise SuiteError(f"{path}: model.device_map: a device map splits one model across devices and cannot be "
                         f"combined with a data-parallel run ({distributed.world_size()} processes); launch "
                         "one process, or drop model.device_map")


def _check_task(suite: Suite, entry: Entry, what: str, key: str) -> None:
    if suite.task not in entry.tasks:
        raise SuiteError(f"{suite.source}: {key}: {what} {entry.kind!r} does not support task {suite.task!r} "
                         f"(supports: {', '.join(entry.tasks)})")


def suite_relative(value: str, context: object) -> Path | None:
    """A plugin option's file path made absolute from ``plugin_options``' validation context
    (``{"suite_dir": ...}``); None while the suite's directory is not known (the audit then
    checks the file when it runs)."""
    path = Path(value).expanduser()
    base = context.get("suite_dir") if isinstance(context, dict) else None
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path if path.is_absolute() else None


def plugin_options(model: type[BaseModel], options: dict[str, Any], suite_dir: Path) -> BaseModel:
    """Validate a plugin's options; validators may read ``info.context["suite_dir"]`` to
    check files named relative to the suite before the run starts."""
    return model.model_validate(options, context={"suite_dir": str(suite_dir)})


def _validate_options(model: type[BaseModel], options: dict[str, Any], path: Path, key: str) -> BaseModel:
    try:
        return plugin_options(model, options, path.parent)
    except ValidationError as exc:
        raise SuiteError(f"{path}: {_first_error(exc, key)}") from None


def _unknown(what: str, kind: str, registry: TunerRegistry | AuditRegistry, pm: PluginSet) -> str:
    known = ", ".join(e.kind for e in registry) or "none"
    message = f"unknown {what} {kind!r} (known: {known})"
    hint = pm.failure_for(kind)
    return f"{message}; {hint}" if hint else message


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    """``prefix.loc: message`` for the first error, counting the rest."""
    errors = exc.errors()
    first = errors[0]
    loc = _loc(first["loc"])
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    where = ".".join(part for part in (prefix, loc) if part)
    if loc.startswith("[") and prefix:
        where = prefix + loc
    return f"{where}: {message}" if where else message


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
