"""Length: training rows the tokenizer would cut at ``tuner.training.max_length``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from auditft.default_plugins.audits.data.findings import Findings, rate
from auditft.records import finite_or_none

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from auditft.data import Example
    from auditft.default_plugins.audits.data.options import DataOptions
    from auditft.jobs import AuditJob

Item = TypeVar("Item")


@dataclass
class LengthStats:
    lengths: list[int]
    max_length: int
    truncated: list[int]  # positions longer than max_length

    def summary(self) -> dict[str, Any]:
        import numpy as np

        arr = np.asarray(self.lengths, dtype=float)
        over = arr[self.truncated] - self.max_length if self.truncated else np.zeros(0)
        pct = (lambda q: float(np.percentile(arr, q))) if len(arr) else (lambda q: 0.0)
        return {
            "n": len(self.lengths), "max_length": self.max_length, "truncated": len(self.truncated),
            "truncated_rate": len(self.truncated) / len(self.lengths) if self.lengths else 0.0,
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": int(arr.max()) if len(arr) else 0,
            "mean_tokens_cut": float(over.mean()) if len(over) else 0.0,
            "max_tokens_cut": int(over.max()) if len(over) else 0,
        }


def token_lengths(items: Sequence[Item], count: Callable[[list[Item]], list[int]], max_length: int) -> LengthStats:
    """Token counts from ``count`` (a batch of rows -> token counts, as training tokenises them)
    and the rows that training would truncate at ``max_length``."""
    lengths = [int(n) for n in count(list(items))] if items else []
    return LengthStats(lengths, max_length, [i for i, n in enumerate(lengths) if n > max_length])


def check_lengths(job: AuditJob, rows: list[Example], out: Findings, options: DataOptions) -> None:
    """The audit step: ``truncated_rate`` and the longest rows, with the base model's tokenizer."""
    from auditft.models import ResolvedModel, load_tokenizer

    base = getattr(job.models, "base", None)
    if not isinstance(base, ResolvedModel):  # e.g. a stand-in session without a base model
        out.notes.append("Length: the model session has no base model, so no tokenizer; length not checked.")
        return
    tokenizer = load_tokenizer(base)
    max_length = job.suite.tuner.training.max_length
    count: Callable[[list[Example]], list[int]]
    if job.task == "classification":
        def count(batch: list[Example]) -> list[int]:
            return [len(ids) for ids in tokenizer([ex.text for ex in batch], verbose=False)["input_ids"]]
    else:
        count = pair_counter(tokenizer, job.suite.generation.system_prompt)
    stats = token_lengths(rows, count, max_length)
    summary = stats.summary()
    out.metrics["truncated_rate"] = rate(len(stats.truncated), len(rows))
    longest = sorted(range(len(rows)), key=lambda i: -stats.lengths[i])[:options.max_examples]
    out.evidence["lengths"] = {**{k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in summary.items()},
                               "longest": [{"row": rows[i].row, "tokens": stats.lengths[i]} for i in longest]}
    out.notes.append(
        "Length: tokens per training row with the base model's tokenizer (special tokens included"
        + ("; generation: the chat-formatted prompt plus the response, as in training" if job.task == "generation"
           else "") + f"); rows over tuner.training.max_length={max_length} are truncated in training.")


def pair_counter(tokenizer: PreTrainedTokenizerBase, system: str | None) -> Callable[[list[Example]], list[int]]:
    """Token counts of generation rows exactly as ``auditft.chat.encode_pair`` builds them."""
    from auditft.chat import messages, render_prompt, render_response

    def count(batch: list[Example]) -> list[int]:
        out = []
        for ex in batch:
            chat = messages(ex.text, system)
            prompt = tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False, verbose=False)
            answer = tokenizer(render_response(tokenizer, chat, ex.response or ""), add_special_tokens=False,
                               verbose=False)
            out.append(len(prompt["input_ids"]) + len(answer["input_ids"]))
        return out

    return count
