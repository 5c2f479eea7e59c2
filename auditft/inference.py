"""Shared, cached model inference for audits.

One ``ModelSession`` per run loads the adapter model once (through its tuner's ``load``) and
the base encoder once, and caches predictions per split, so ``accuracy`` and ``fairness``
read the same numbers from one batched pass. Batches are length-bucketed (texts sorted by
length, then padded per batch) under ``torch.inference_mode``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from auditft.data import Example, SplitData
    from auditft.models import ResolvedModel


class ModelSession:
    def __init__(self, *, tuner: Any, base: ResolvedModel, data: SplitData, adapter_dir: Any,
                 max_length: int, batch_size: int, seed: int) -> None:
        self.tuner = tuner
        self.base = base
        self.data = data
        self.adapter_dir = adapter_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.seed = seed
        self._cache: dict[str, Any] = {}

    # -- adapter -----------------------------------------------------------------------

    def adapter_model(self) -> tuple[Any, Any]:
        if "adapter" not in self._cache:
            self._cache["adapter"] = self.tuner.load(self.base, self.adapter_dir, self.data)
        return self._cache["adapter"]

    def adapter_proba(self, split: str) -> np.ndarray:
        """Class probabilities of the fine-tuned classifier on ``split``."""
        key = f"adapter_proba:{split}"
        if key not in self._cache:
            model, tokenizer = self.adapter_model()
            texts = [ex.text for ex in getattr(self.data, split)]
            logits = self._batched(model, tokenizer, texts, lambda out, mask: out.logits, "adapter")
            self._cache[key] = _softmax(logits)
        return self._cache[key]

    # -- base model: frozen encoder + linear probe ------------------------------------

    def base_embeddings(self, split: str) -> np.ndarray:
        key = f"embed:{split}"
        if key not in self._cache:
            from auditft.models import load_encoder, load_tokenizer

            if "encoder" not in self._cache:
                self._cache["encoder"] = (load_encoder(self.base), load_tokenizer(self.base))
            model, tokenizer = self._cache["encoder"]
            texts = [ex.text for ex in getattr(self.data, split)]
            self._cache[key] = self._batched(model, tokenizer, texts, _mean_pool, f"base {split}")
        return self._cache[key]

    def base_probe_proba(self, split: str) -> np.ndarray:
        """The base model's figure for classification: logistic regression on the frozen
        base model's mean-pooled embeddings, fitted on the same train split the adapter saw."""
        key = f"probe_proba:{split}"
        if key not in self._cache:
            from sklearn.linear_model import LogisticRegression

            if "probe" not in self._cache:
                x = self.base_embeddings("train")
                y = np.array([ex.label for ex in self.data.train])
                probe = LogisticRegression(max_iter=2000, C=1.0, random_state=self.seed)
                self._cache["probe"] = probe.fit(x, y)
            probe = self._cache["probe"]
            proba = np.zeros((len(getattr(self.data, split)), len(self.data.labels)))
            proba[:, probe.classes_] = probe.predict_proba(self.base_embeddings(split))
            self._cache[key] = proba
        return self._cache[key]

    # -- batching -------------------------------------------------------------------------

    def _batched(self, model: Any, tokenizer: Any, texts: list[str], head: Any, what: str) -> np.ndarray:
        import torch

        from auditft.progress import progress_bar

        device = next(model.parameters()).device
        model.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks: list[tuple[list[int], np.ndarray]] = []
        with torch.inference_mode(), progress_bar(f"inference: {what}", total=len(texts)) as advance:
            for start in range(0, len(order), self.batch_size):
                ids = order[start:start + self.batch_size]
                enc = tokenizer([texts[i] for i in ids], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt").to(device)
                out = model(**enc)
                chunks.append((ids, head(out, enc["attention_mask"]).float().cpu().numpy()))
                advance(len(ids))
        width = chunks[0][1].shape[1] if chunks else 0
        result = np.zeros((len(texts), width), dtype=np.float32)
        for ids, values in chunks:
            result[ids] = values
        return result


def _mean_pool(out: Any, mask: Any) -> Any:
    hidden = out.last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def labels_of(examples: list[Example]) -> np.ndarray:
    return np.array([ex.label for ex in examples], dtype=np.int64)
