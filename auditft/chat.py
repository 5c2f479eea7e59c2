"""Prompt formatting for generation tasks: one place decides how a prompt becomes tokens,
for training (prompt + response, loss on the response only) and for audits (prompt +
generation prompt), so what the model is trained on is exactly what it is asked.

The model's own chat template is used when the tokenizer has one; otherwise a plain
``prompt\\n`` / ``response<eos>`` layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # labels with this value carry no loss (prompt and padding tokens)


def messages(prompt: str, system: str | None = None,
             shots: list[tuple[str, str]] | None = None) -> list[dict[str, str]]:
    """Chat messages for one prompt: optional system message, optional few-shot turns."""
    out = [{"role": "system", "content": system}] if system else []
    for question, answer in shots or []:
        out += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return out + [{"role": "user", "content": prompt}]


def render_prompt(tokenizer: PreTrainedTokenizerBase, chat: list[dict[str, str]]) -> str:
    """The text the model sees before it answers."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    lines = [m["content"] for m in chat]
    return "\n".join(lines) + "\n"


def render_response(tokenizer: PreTrainedTokenizerBase, chat: list[dict[str, str]], response: str) -> str:
    """The text that follows ``render_prompt(chat)`` when the model gives ``response``,
    end-of-turn marker included (so the model learns to stop)."""
    prompt = render_prompt(tokenizer, chat)
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template(chat + [{"role": "assistant", "content": response}], tokenize=False)
        if full.startswith(prompt):
            tail = full[len(prompt):]
            eos = tokenizer.eos_token or ""
            return tail if not eos or eos in tail else tail + eos
    return response + (tokenizer.eos_token or "")


def encode_pair(tokenizer: PreTrainedTokenizerBase, chat: list[dict[str, str]], response: str, max_length: int) -> tuple[dict[str, list[int]], bool]:
    """Token ids and labels for one training pair; returns (features, truncated).

    When the pair is longer than ``max_length`` the prompt loses tokens from its start
    (the question is at its end) and the response keeps at least a quarter of the budget.
    """
    prompt_ids = tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(render_response(tokenizer, chat, response), add_special_tokens=False)["input_ids"]
    truncated = len(prompt_ids) + len(response_ids) > max_length
    if truncated:
        response_ids = response_ids[: max(max_length - len(prompt_ids), max_length // 4)]
        keep = max_length - len(response_ids)
        prompt_ids = prompt_ids[len(prompt_ids) - keep:] if keep > 0 else []
    ids = prompt_ids + response_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids),
            "labels": [IGNORE_INDEX] * len(prompt_ids) + response_ids}, truncated
