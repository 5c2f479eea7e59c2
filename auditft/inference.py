"""Shared, cached model inference for audits.

One ``ModelSession`` per run loads the adapter model once (through its tuner's ``load``) and
the base encoder once, and caches predictions per split, so ``accuracy`` and ``fairness``
read the same numbers from one batched pass. Batches are length-bucketed (texts sorted by token
count, then padded per batch) under ``torch.inference_mode``; the base encoder embeds each
distinct text once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from auditft import distributed

if TYPE_CHECKING:
    from collections.abc import Callable
    import torch
    from transformers import PreTrainedTokenizerBase
    from transformers.utils import ModelOutput
    from pathlib import Path

    from auditft.data import Example, SplitData
    from auditft.models import ResolvedModel
    from auditft.jobs import Tuner
    from auditft.suite import Suite


class ModelSession:
    @classmethod
    def for_suite(cls, suite: Suite, base: ResolvedModel, data: SplitData, *, tuner: Tuner | None,
                  adapter_dir: Path | None, base_cache: dict[str, Any] | None = None) -> ModelSession:
        """A session with the suite's inference settings (lengths, batch size, seed, prompt):
        the one way core builds one, for the run's adapter, the base alone or a retrained model.
        ``base_cache``: the base model's figures shared by runs with the same base, data and
        inference settings (the tuners of one suite, ``auditft.tuner_list``), computed once."""
        training = suite.tuner.training
        return cls(tuner=tuner, base=base, data=data, adapter_dir=adapter_dir, max_length=training.max_length,
                   batch_size=training.eval_batch_size, seed=suite.seed, system_prompt=suite.generation.system_prompt,
                   max_new_tokens=suite.generation.max_new_tokens, base_cache=base_cache)

    @staticmethod
    def base_cache_key(suite: Suite, base: ResolvedModel) -> str:
        """What a shared ``base_cache`` must agree on: the base weights and precision, the data and
        its split, and every inference setting a base figure depends on."""
        training = suite.tuner.training
        return _digest([base.weights_sha256, str(base.precision), str(suite.model.device_map),
                        suite.data.model_dump(mode="json"), training.max_length, training.eval_batch_size,
                        suite.seed, suite.generation.model_dump(mode="json")])

    def __init__(self, *, tuner: Tuner | None, base: ResolvedModel, data: SplitData, adapter_dir: Path | None,
                 max_length: int, batch_size: int, seed: int, system_prompt: str | None = None,
                 max_new_tokens: int = 48, base_cache: dict[str, Any] | None = None) -> None:
        self.tuner = tuner
        self.base = base
        self.data = data
        self.adapter_dir = adapter_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.seed = seed
        self.system_prompt = system_prompt
        self.max_new_tokens = max_new_tokens
        self._cache: dict[str, Any] = {}
        #: the base model alone (encoder, embeddings, probe, base answers): shareable across runs
        self._base_figures: dict[str, Any] = base_cache if base_cache is not None else {}

    # -- adapter -----------------------------------------------------------------------

    def adapter_model(self) -> tuple[Any, Any]:
        if "adapter" not in self._cache:
            if self.tuner is None or self.adapter_dir is None:
                raise RuntimeError("this session serves the base model only (no adapter)")
            self._cache["adapter"] = self.tuner.load(self.base, self.adapter_dir, self.data)
        return self._cache["adapter"]

    def adapter_proba(self, split: str) -> np.ndarray:
        """Class probabilities of the fine-tuned classifier on ``split``."""
        key = f"adapter_proba:{split}"
        if key not in self._cache:
            self._cache[key] = self._adapter_scores([ex.text for ex in getattr(self.data, split)], "adapter")
        return self._cache[key]

    # -- base model: frozen encoder + linear probe ------------------------------------

    def base_embeddings(self, split: str) -> np.ndarray:
        key = f"embed:{split}"
        if key not in self._base_figures:
            self._base_figures[key] = self.base_embed_texts([ex.text for ex in getattr(self.data, split)],
                                                            f"base {split}")
        return self._base_figures[key]

    def base_embed_texts(self, texts: list[str], what: str = "base, other texts") -> np.ndarray:
        """The frozen base model's mean-pooled embeddings of ``texts``. Each distinct text is
        embedded once per base cache, whoever asks: the k-fold sample's rows and the accuracy
        probe's train split share their vectors (issue 19), and a text repeated in a split is
        embedded once."""
        known: dict[str, np.ndarray] = self._base_figures.setdefault("embed_by_text", {})
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            model, tokenizer = self._encoder()
            known.update(zip(missing, self._batched(model, tokenizer, missing, _mean_pool, what)))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[t] for t in texts])

    def _encoder(self) -> tuple[Any, Any]:
        if "encoder" not in self._base_figures:
            from auditft.models import load_encoder, load_tokenizer

            self._base_figures["encoder"] = (load_encoder(self.base), load_tokenizer(self.base))
        return self._base_figures["encoder"]

    def base_probe_proba(self, split: str) -> np.ndarray:
        """The base model's figure for classification: logistic regression on the frozen
        base model's mean-pooled embeddings, fitted on the same train split the adapter saw."""
        key = f"probe_proba:{split}"
        if key not in self._base_figures:
            from sklearn.linear_model import LogisticRegression

            if "probe" not in self._base_figures:
                x = self.base_embeddings("train")
                y = np.array([ex.label for ex in self.data.train])
                probe = LogisticRegression(max_iter=2000, C=1.0, random_state=self.seed)
                self._base_figures["probe"] = probe.fit(x, y)
            self._base_figures[key] = self._probe_scores(self.base_embeddings(split))
        return self._base_figures[key]

    def proba_texts(self, texts: list[str], *, which: str = "adapter") -> np.ndarray:
        """Class probabilities on arbitrary ``texts`` (perturbed inputs, a second task's rows):
        the fine-tuned classifier (``which="adapter"``) or the base model's linear probe, the
        same probe as ``base_probe_proba``, on those texts' embeddings (``which="base"``)."""
        if which not in ("adapter", "base"):
            raise ValueError(f"which must be 'adapter' or 'base', not {which!r}")

        def compute() -> np.ndarray:
            if which == "adapter":
                return self._adapter_scores(texts, "adapter, other texts")
            self.base_probe_proba("train")  # fits the probe once
            return self._probe_scores(self.base_embed_texts(texts))

        return self._memo(which, f"proba_texts:{which}:{_digest(texts)}", compute)

    def _memo(self, which: str, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key: the base model's figures in the shareable base cache,
        the adapter's in this session's own."""
        store = self._base_figures if which == "base" else self._cache
        if key not in store:
            store[key] = compute()
        return store[key]

    def _adapter_scores(self, texts: list[str], what: str) -> np.ndarray:
        model, tokenizer = self.adapter_model()
        return _softmax(self._batched(model, tokenizer, texts, lambda out, mask: out.logits, what))

    def _probe_scores(self, embedded: np.ndarray) -> np.ndarray:
        """The fitted probe's probabilities in the suite's label order (a label absent from
        train gets probability 0)."""
        probe = self._base_figures["probe"]
        proba = np.zeros((len(embedded), len(self.data.labels)))
        proba[:, probe.classes_] = probe.predict_proba(embedded)
        return proba

    # -- generation ------------------------------------------------------------------------

    def answer_logprobs(self, prompts: list[str], answers: list[str], *, which: str = "adapter") -> np.ndarray:
        """The mean per-token log-probability the model gives ``answers[i]`` as its reply to
        ``prompts[i]``, formatted exactly as ``generate`` formats them (chat template, system
        prompt); ``exp`` of it is a per-token confidence in (0, 1]. The end-of-turn marker counts
        as one of the answer's tokens (stopping is part of the answer)."""
        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
        return self._memo(which, f"answer_logprobs:{which}:{_digest([prompts, answers])}",
                          lambda: self._score_answers(prompts, answers, which))

    def _score_answers(self, prompts: list[str], answers: list[str], which: str) -> np.ndarray:
        import torch

        from auditft.chat import render_prompt, render_response
        from auditft.progress import progress_bar

        model, tokenizer, context = self.causal_model(which)
        device = next(model.parameters()).device
        out = np.zeros(len(prompts), dtype=np.float64)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        with torch.inference_mode(), context, progress_bar(f"score answers: {which}", total=len(prompts)) as advance:
            for ids in _length_batches([len(p) for p in prompts], self.batch_size):
                rows = []
                for i in ids:
                    chat = self.chat(prompts[i], which)
                    head = tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False)["input_ids"]
                    tail = tokenizer(render_response(tokenizer, chat, answers[i]),
                                     add_special_tokens=False)["input_ids"]
                    rows.append((head, head + tail))
                width = max(len(whole) for _, whole in rows)
                input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, (_, whole) in enumerate(rows):
                    input_ids[r, :len(whole)] = torch.tensor(whole)
                    mask[r, :len(whole)] = 1
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
                logp = torch.log_softmax(logits[:, :-1], dim=-1)
                targets = input_ids[:, 1:].to(device)
                token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu().numpy()
                for r, i in enumerate(ids):
                    head, whole = rows[r]
                    start, stop = max(len(head) - 1, 0), len(whole) - 1  # positions predicting answer tokens
                    out[i] = float(token_logp[r, start:stop].mean()) if stop > start else 0.0
                advance(len(ids))
        return out

    def generate(self, prompts: list[str], *, which: str = "adapter",
                 max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers of the adapter (``which="adapter"``) or the base model to ``prompts``,
        formatted exactly as in training (chat template, system prompt)."""
        return [group[0] for group in self._generate(prompts, which, max_new_tokens, n=1, temperature=None)]

    def sample(self, prompts: list[str], *, which: str = "adapter", n: int = 5, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> list[list[str]]:
        """``n`` sampled answers per prompt (seeded), for self-consistency checks."""
        return self._generate(prompts, which, max_new_tokens, n=n, temperature=temperature)

    def causal_model(self, which: str) -> tuple[Any, Any, Any]:
        """(model, tokenizer, context) for ``which``. The base shares the adapter's weights
        when the adapter is a peft model on an unquantised base (adapters disabled in the
        context), so the base weights are loaded once."""
        from contextlib import nullcontext

        if which == "adapter":
            model, tokenizer = self.adapter_model()
            return model, tokenizer, nullcontext()
        if which != "base":
            raise ValueError(f"which must be 'adapter' or 'base', not {which!r}")
        model, tokenizer = self.adapter_model()
        if getattr(self.tuner, "base_is_adapter_model", False):  # e.g. ``prompt``: same weights
            return model, tokenizer, nullcontext()
        if hasattr(model, "disable_adapter") and not _quantized(model):
            return model, tokenizer, model.disable_adapter()
        if "base_lm" not in self._base_figures:
            from auditft.models import load_causal_lm, load_tokenizer

            self._base_figures["base_lm"] = (load_causal_lm(self.base).eval(), load_tokenizer(self.base))
        return (*self._base_figures["base_lm"], nullcontext())

    def chat(self, prompt: str, which: str) -> list[dict[str, str]]:
        """Messages for ``prompt``: a tuner may add to them (``prompt`` adds few-shot turns)."""
        from auditft.chat import messages

        custom = getattr(self.tuner, "chat", None)
        if which == "adapter" and custom is not None:
            return custom(self.adapter_dir, prompt, self.system_prompt)
        return messages(prompt, self.system_prompt)

    def _generate(self, prompts: list[str], which: str, max_new_tokens: int | None, *, n: int,
                  temperature: float | None) -> list[list[str]]:
        max_new = max_new_tokens or self.max_new_tokens
        return self._memo(which, f"generate:{_digest([which, prompts, max_new, n, temperature])}",
                          lambda: self._run_generation(prompts, which, max_new, n, temperature))

    def _run_generation(self, prompts: list[str], which: str, max_new: int, n: int,
                        temperature: float | None) -> list[list[str]]:
        import torch
        from transformers import GenerationConfig

        from auditft.chat import render_prompt
        from auditft.progress import progress_bar

        model, tokenizer, context = self.causal_model(which)
        texts = [render_prompt(tokenizer, self.chat(p, which)) for p in prompts]
        sampling = temperature is not None
        config = GenerationConfig(
            max_new_tokens=max_new, do_sample=sampling, num_return_sequences=n,
            temperature=temperature if sampling else None, top_p=0.95 if sampling else None,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        side = tokenizer.padding_side, tokenizer.truncation_side
        tokenizer.padding_side, tokenizer.truncation_side = "left", "left"  # answers start at one column
        device = next(model.parameters()).device
        answers: list[list[str]] = [[] for _ in texts]
        label = f"generate: {which}" + (f" x{n} sampled" if sampling else "")
        batches = _length_batches([len(t) for t in texts], self.batch_size)
        # prompts get the model's context, not the training max_length: an audit prompt (e.g. a
        # grounded probe with its passage) must reach the model whole, system turn included
        context_length = getattr(getattr(model, "config", None), "max_position_embeddings", None) or 2048
        prompt_budget = max(self.max_length, int(context_length) - max_new)
        try:
            with torch.inference_mode(), context, progress_bar(label, total=len(texts)) as advance:
                for b in distributed.my_share(len(batches)):
                    start, ids = b * self.batch_size, batches[b]
                    enc = tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                                    max_length=prompt_budget, add_special_tokens=False,
                                    return_tensors="pt").to(device)
                    if sampling:
                        torch.manual_seed(self.seed + start)  # same samples on every run
                    out = model.generate(**enc, generation_config=config)
                    decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                    for j, i in enumerate(ids):
                        answers[i] = [d.strip() for d in decoded[j * n:(j + 1) * n]]
                    advance(len(ids))
        finally:
            tokenizer.padding_side, tokenizer.truncation_side = side
        if distributed.enabled():  # each process answered its share of the batches
            for part in distributed.gather({i: a for i, a in enumerate(answers) if a}):
                for i, a in part.items():
                    answers[i] = a
        return answers

    # -- batching -------------------------------------------------------------------------

    def _batched(self, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: list[str], head: Callable[..., torch.Tensor], what: str) -> np.ndarray:
        import torch

        from auditft.progress import progress_bar

        device = next(model.parameters()).device
        model.eval()
        # batches of equal token counts: sorting by characters left a fifth of every batch
        # padding on the demo's notes, sorting by tokens leaves 3-6% (a tokenizer pass is ~1%
        # of the model's)
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]] \
            if texts else []
        batches = _length_batches(lengths, self.batch_size)
        chunks: list[tuple[list[int], np.ndarray]] = []
        with torch.inference_mode(), progress_bar(f"inference: {what}", total=len(texts)) as advance:
            for b in distributed.my_share(len(batches)):
                ids = batches[b]
                enc = tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt").to(device)
                out = model(**enc)
                chunks.append((ids, head(out, enc["attention_mask"]).float().cpu().numpy()))
                advance(len(ids))
        if distributed.enabled():  # each process scored its share of the batches
            chunks = [chunk for part in distributed.gather(chunks) for chunk in part]
        width = chunks[0][1].shape[1] if chunks else 0
        result = np.zeros((len(texts), width), dtype=np.float32)
        for ids, values in chunks:
            result[ids] = values
        return result


def _digest(value: object) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value).encode()).hexdigest()


def _length_batches(lengths: list[int], size: int) -> list[list[int]]:
    """Row numbers in batches of similar length (little padding); the same batches in every
    process, so a data-parallel run splits them without overlap."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start:start + size] for start in range(0, len(order), size)]


def _quantized(model: torch.nn.Module) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False))


def _mean_pool(out: ModelOutput, mask: torch.Tensor) -> Any:
    hidden = out.last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def labels_of(examples: list[Example]) -> np.ndarray:
    return np.array([ex.label for ex in examples], dtype=np.int64)
