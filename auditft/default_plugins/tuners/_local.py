"""Shared machinery for the built-in tuners that are not peft methods (``adapter``,
``freeze``, ``full``): they change the Hugging Face model in place, train it through
``auditft.training.train`` (so checkpoints, resume and early stopping behave as for the
peft tuners) and save safetensors themselves.

The module name starts with an underscore, so plugin discovery skips it: it registers nothing.

``adapter`` and ``freeze`` save only the tensors they trained (plus, for classification, the
freshly initialised head) as ``adapter_model.safetensors`` next to ``adapter_config.json``,
and load them back onto a freshly loaded base with strict key checking.
"""

from __future__ import annotations

import fnmatch
import json
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.errors import ModelError, SuiteError
from auditft.adapter_meta import write_meta

if TYPE_CHECKING:
    from auditft.data import SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.records import TuneResult

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"


# -- model structure -----------------------------------------------------------------------

def num_hidden_layers(model: Any) -> int | None:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "num_hidden_layers", None)
    return int(value) if isinstance(value, int) else None


def find_blocks(model: Any) -> tuple[str, Any] | None:
    """``(name, ModuleList)`` of the transformer blocks: the first ``nn.ModuleList`` whose
    length is ``config.num_hidden_layers`` (``bert.encoder.layer``, ``model.layers``, ...)."""
    from torch import nn

    count = num_hidden_layers(model)
    if not count:
        return None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return name, module
    return None


def backbone_prefix(model: Any) -> str:
    """The attribute holding the backbone (``bert``, ``model``): parameters outside it are
    the task head."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    return prefix if prefix and hasattr(model, prefix) else ""


def head_parameter_names(model: Any, *, pooler: bool) -> list[str]:
    """Parameters of a classification head: everything outside the backbone (``classifier``,
    ``score``, DistilBERT's ``pre_classifier``), and with ``pooler`` the backbone's pooler
    (BERT's pooler feeds the classifier)."""
    prefix = backbone_prefix(model)
    names = []
    for name, _ in model.named_parameters():
        outside = not prefix or not name.startswith(prefix + ".")
        in_pooler = pooler and prefix and name.startswith(f"{prefix}.pooler.")
        if outside or in_pooler:
            names.append(name)
    return names


def embedding_parameter_names(model: Any) -> list[str]:
    """The input embeddings: the backbone's ``embeddings`` module when it has one (BERT:
    word, position and token-type embeddings and their LayerNorm), else the input
    embedding matrix (Llama: ``model.embed_tokens``)."""
    prefix = backbone_prefix(model)
    backbone = getattr(model, prefix) if prefix else model
    module = getattr(backbone, "embeddings", None)
    if module is None:
        module = model.get_input_embeddings()
    ids = {id(p) for p in module.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def matches(name: str, pattern: str) -> bool:
    """A glob (``*``, ``?``, ``[``) matches the whole name; anything else is a substring."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def set_trainable(model: Any, names: set[str]) -> None:
    for name, param in model.named_parameters():
        param.requires_grad_(name in names)


def trainable_names(model: Any) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def group_counts(model: Any, names: list[str]) -> list[dict[str, Any]]:
    """``[{module, parameters, tensors}]`` for ``names``, grouped by transformer block
    (``bert.encoder.layer.1``) or, outside the blocks, by owning module (``classifier``)."""
    found = find_blocks(model)
    block_prefix = found[0] + "." if found else None
    sizes = dict((n, p.numel()) for n, p in model.named_parameters())
    groups: dict[str, list[int]] = {}
    for name in names:
        if block_prefix and name.startswith(block_prefix):
            key = block_prefix + name[len(block_prefix):].split(".", 1)[0]
        else:
            key = name.rsplit(".", 1)[0] if "." in name else name
        entry = groups.setdefault(key, [0, 0])
        entry[0] += int(sizes[name])
        entry[1] += 1
    return [{"module": key, "parameters": p, "tensors": t} for key, (p, t) in groups.items()]


# -- saving and loading --------------------------------------------------------------------

def save_tensors(model: Any, names: list[str], adapter_dir: Path) -> dict[str, Any]:
    """Write ``names`` (parameters of ``model``) to ``adapter_model.safetensors``."""
    from safetensors.torch import save_file

    params = dict(model.named_parameters())
    tensors = {name: params[name].detach().to("cpu").contiguous().clone() for name in names}
    save_file(tensors, str(Path(adapter_dir) / WEIGHTS_FILE), metadata={"format": "pt"})
    return tensors


def write_config(adapter_dir: Path, config: dict[str, Any]) -> None:
    path = Path(adapter_dir) / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_config(adapter_dir: Path, kind: str) -> dict[str, Any]:
    path = Path(adapter_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the {kind} adapter config: {exc}") from None
    if config.get("kind") != kind:
        raise ModelError(f"{path}: written by tuner {config.get('kind')!r}, not {kind!r}")
    return config


def load_tensors_strict(model: Any, adapter_dir: Path, expected: list[str]) -> None:
    """Load ``adapter_model.safetensors`` into ``model``: the file must hold exactly the
    tensors its config lists, and every one must land on a parameter of the same shape."""
    from safetensors.torch import load_file

    path = Path(adapter_dir) / WEIGHTS_FILE
    try:
        tensors = load_file(str(path))
    except (OSError, ValueError, RuntimeError) as exc:  # missing, truncated or not safetensors
        raise ModelError(f"{path}: cannot read: {exc}") from None
    listed, saved = set(expected), set(tensors)
    if listed != saved:
        raise ModelError(f"{path}: does not match {CONFIG_FILE}: "
                         f"missing {_few(listed - saved)}, unlisted {_few(saved - listed)}")
    params = dict(model.named_parameters())
    stray = sorted(name for name in saved if name not in params)
    if stray:
        raise ModelError(f"{path}: {len(stray)} saved tensor(s) match no parameter of the model "
                         f"(another base model?): {_few(set(stray))}")
    wrong = [f"{n} {tuple(tensors[n].shape)} vs {tuple(params[n].shape)}"
             for n in sorted(saved) if tensors[n].shape != params[n].shape]
    if wrong:
        raise ModelError(f"{path}: tensor shapes do not match the model: {'; '.join(wrong[:3])}")
    import torch

    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(dtype=params[name].dtype, device=params[name].device))


def _few(names: set[str], limit: int = 4) -> str:
    items = sorted(names)
    if not items:
        return "none"
    return ", ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def option_error(kind: str, option: str, message: str) -> SuiteError:
    """A problem only visible once the model is loaded, blamed on the option to change."""
    return SuiteError(f"tuner.options.{option}: {message} (tuner {kind!r})")


# -- the tuner template --------------------------------------------------------------------

class LocalTuner(ABC):
    """Load the base for the task, let the subclass change it (``prepare``), train through
    ``auditft.training.train``, let the subclass save it (``save``), write the meta file."""

    kind = ""
    format = ""

    def __init__(self, options: Any) -> None:
        self.options = options

    @abstractmethod
    def prepare(self, model: Any, job: TuneJob) -> dict[str, Any]:
        """Modify ``model`` in place for training; return a state passed on to ``save``."""

    @abstractmethod
    def save(self, model: Any, tokenizer: Any, job: TuneJob, state: dict[str, Any]) -> dict[str, Any]:
        """Write the weights into ``job.adapter_dir``; return facts for the report."""

    def tune(self, job: TuneJob) -> TuneResult:
        from auditft import training
        from auditft.models import load_for_task, load_tokenizer

        tokenizer = load_tokenizer(job.base)
        model = load_for_task(job.base, job.task, job.data.labels)
        state = self.prepare(model, job)
        train_ds, eval_ds = training.task_datasets(job, tokenizer)
        result = training.train(job, model, tokenizer, train_ds, eval_ds)
        model.eval()
        facts = self.save(model, tokenizer, job, state)
        write_meta(job.adapter_dir, kind=self.kind, task=job.task, labels=job.data.labels,
                   base=job.base.ref, format=self.format)
        return replace(result, facts={**result.facts, **facts})

    @abstractmethod
    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The saved adapter on its base, in eval mode, for the audits."""
