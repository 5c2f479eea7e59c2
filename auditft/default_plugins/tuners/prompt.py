"""Tuner ``prompt``: no training at all, the base model with a system prompt and few-shot
examples. It is the baseline every fine-tune must beat: if a prompt does as well, the
adapter is not worth shipping.

``tune`` writes ``prompt.json`` (the system prompt and the few-shot pairs) into the adapter
directory, where the core hashes and quarantines it like adapter weights. The shots come
from ``examples`` when given, else ``shots`` distinct pairs drawn from the train split with
the suite's seed. In the audits the adapter side is the base model asked with those shots
as earlier chat turns (``chat``); the base side is the plain base model.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from auditft import hookimpl
from auditft.adapter_meta import write_meta

if TYPE_CHECKING:
    from auditft.data import Example, SplitData
    from auditft.jobs import TuneJob
    from auditft.models import ResolvedModel
    from auditft.records import TuneResult
    from auditft.registry import TunerRegistry

PROMPT_FILE = "prompt.json"


class Shot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    response: str


class PromptOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: system prompt for the adapter side (None: the suite's generation.system_prompt;
    #: "": no system prompt)
    system: str | None = None
    #: few-shot examples drawn (seeded) from the train split; ignored when examples is given
    shots: int = Field(default=3, ge=0, le=64)
    #: explicit few-shot examples, used as given, in order
    examples: list[Shot] | None = None


def draw_shots(train: list[Example], n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` distinct (prompt, response) pairs from ``train``, the same for the same seed."""
    unique = list(dict.fromkeys((ex.text, ex.response or "") for ex in train))
    return random.Random(seed).sample(unique, min(n, len(unique)))


def count_parameters(base: ResolvedModel) -> int | None:
    """Parameters in the base's safetensors files, read from their headers (no loading);
    None when the weights are not in a local directory."""
    import math
    import struct

    directory = Path(base.path)
    files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    if not files:
        return None
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        total += sum(math.prod(info["shape"]) for name, info in header.items() if name != "__metadata__")
    return int(total)


class PromptTuner:
    kind = "prompt"
    #: the loaded "adapter" model is the unchanged base model: an inference session may reuse
    #: it for the base side instead of loading the base a second time
    base_is_adapter_model = True

    def __init__(self, options: PromptOptions) -> None:
        self.options = options
        self._templates: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def tune(self, job: TuneJob) -> TuneResult:
        import time

        from auditft.chat import messages, render_prompt
        from auditft.models import load_tokenizer
        from auditft.records import TuneResult

        started = time.perf_counter()
        if self.options.examples is not None:
            shots = [(s.prompt, s.response) for s in self.options.examples]
            source = "examples"
        else:
            shots = draw_shots(job.data.train, self.options.shots, job.seed)
            source = f"train split, seed {job.seed}"
        system = self.options.system if self.options.system is not None else job.suite.generation.system_prompt
        template = {"system": system, "shots": [{"prompt": q, "response": a} for q, a in shots],
                    "source": source}
        adapter_dir = Path(job.adapter_dir)
        (adapter_dir / PROMPT_FILE).write_text(json.dumps(template, indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
        write_meta(adapter_dir, kind=self.kind, task=job.task, labels=job.data.labels,
                   base=job.base.ref, format="prompt")
        total = count_parameters(job.base)
        if total is None:
            from auditft.models import load_causal_lm
            from auditft.training import count_parameters as loaded_count

            total = loaded_count(load_causal_lm(job.base))[1]
        # what the shots cost: every audited prompt carries them (and is cut to max_length)
        tokenizer = load_tokenizer(job.base)
        max_length = job.training.max_length
        lengths = [len(tokenizer(render_prompt(tokenizer, messages(ex.text, system, shots)),
                                 add_special_tokens=False)["input_ids"]) for ex in job.data.train]
        facts = {"shots": len(shots), "shot_source": source, "system_prompt": system,
                 "prompt_tokens_max": max(lengths, default=0),
                 "prompts_over_max_length": sum(n > max_length for n in lengths),
                 "max_length": max_length}
        return TuneResult(trainable_parameters=0, total_parameters=int(total), steps=0,
                          seconds=round(time.perf_counter() - started, 3), loss_curve=[], facts=facts)

    def template(self, adapter_dir: Path) -> dict[str, Any]:
        """The parsed ``prompt.json`` of ``adapter_dir`` (cached; re-read if the file changed)."""
        path = Path(adapter_dir) / PROMPT_FILE
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key not in self._templates:
                self._templates[key] = json.loads(path.read_text(encoding="utf-8"))
            return self._templates[key]

    def chat(self, adapter_dir: Path, prompt: str, system: str | None) -> list[dict[str, str]]:
        """Messages for ``prompt`` on the adapter side: the template's system prompt (else
        ``system``) and its shots as earlier turns."""
        from auditft.chat import messages

        template = self.template(adapter_dir)
        chosen = template["system"] if template.get("system") is not None else system
        shots = [(s["prompt"], s["response"]) for s in template["shots"]]
        return messages(prompt, chosen, shots=shots)

    def load(self, base: ResolvedModel, adapter_dir: Path, data: SplitData) -> tuple[Any, Any]:
        """The base causal LM (eval mode) and its tokenizer: the prompt does the rest."""
        from auditft.models import load_causal_lm, load_tokenizer

        if data.task != "generation":
            raise ValueError("tuner 'prompt' supports generation tasks only")
        self.template(adapter_dir)  # fail early on a missing or broken prompt.json
        return load_causal_lm(base).eval(), load_tokenizer(base)


@hookimpl
def auditft_register_tuners(register: TunerRegistry) -> None:
    register.add(
        "prompt",
        PromptTuner,
        summary="prompting baseline: system prompt + few-shot examples, no trained parameters",
        tasks=("generation",),
        options=PromptOptions,
        limitations=(
            "generation only: a classifier needs a trained head",
            "the shots lengthen every prompt; prompts longer than training.max_length are cut "
            "from the left (see the prompts_over_max_length fact)",
            "shots drawn from the train split may repeat test prompts when the splits overlap",
        ),
    )
