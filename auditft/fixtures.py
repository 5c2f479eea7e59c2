"""Fixtures for plugin authors and for auditft's own tests: an isolated plugin manager, tiny
random models and learnable toy data (re-exported by ``auditft.testing``, the public face).

* ``isolated_plugin_manager()``: built-ins only, no entry points, no environment.
* ``registered(pm, plugin, name)``: register a plugin for the duration of a ``with`` block.
* ``tiny_classifier(path)`` / ``tiny_causal_lm(path)``: tiny random models saved as
  safetensors with a real tokenizer, built in-process (no hub, seconds on a CPU).
* ``toy_classification_data(dir)`` / ``toy_generation_data(dir)``: small learnable datasets
  with group columns; ``write_suite(path, ...)`` a suite for them.
* ``toy_facts()`` / ``knowing_causal_lm(path)``: general facts in the tiny LM's words, and the
  tiny causal LM taught them: a base model with something to forget (the ``retention`` audit).

Nothing here imports the conformance checks (``auditft.conformance``), which build on it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditft.plugins import PluginManager, make_plugin_manager

#: words of the toy task: the label is decided by which list dominates a sentence
POSITIVE = ["severe", "sudden", "crushing", "unresponsive", "bleeding", "collapse", "seizure", "stroke"]
NEGATIVE = ["mild", "chronic", "stable", "routine", "refill", "followup", "checkup", "minor"]
FILLER = ["patient", "reports", "pain", "since", "yesterday", "with", "and", "the", "no", "history",
          "of", "fever", "cough", "today", "noted", "at", "home", "visit", "for"]


def isolated_plugin_manager() -> PluginManager:
    """A plugin manager with the built-ins only: what a test of one plugin should start from."""
    return make_plugin_manager(entry_points=False, env={})


@contextmanager
def registered(pm: PluginManager, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` for the block (the manager rebuilds its registries itself)."""
    plugin_name = pm.register(plugin, name=name)
    assert plugin_name is not None
    try:
        yield plugin_name
    finally:
        pm.unregister(name=plugin_name)


def _vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-/<>()&=")
    return special + sorted(set(POSITIVE + NEGATIVE + FILLER)) + chars + [f"##{c}" for c in chars if c.isalnum()]


def tiny_classifier(path: Path, *, hidden: int = 32, layers: int = 2) -> Path:
    """A random 2-layer BERT (about 40k parameters) with a WordPiece tokenizer, saved as
    safetensors in ``path``. Loads like any local model: ``model.base: <path>``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(_vocab())}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    config = BertConfig(vocab_size=len(_vocab()), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


#: chat template of the tiny causal LM (ChatML, as SmolLM2 uses)
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)
#: the toy QA task: "capital of <country> ?" -> "<city>"; unknown countries -> "unknown"
TOY_CAPITALS = {"kenya": "nairobi", "france": "paris", "japan": "tokyo", "peru": "lima", "chad": "ndjamena",
                "cuba": "havana", "mali": "bamako", "iran": "tehran", "oman": "muscat", "togo": "lome",
                "fiji": "suva", "laos": "vientiane"}
TOY_WORDS = ["what", "is", "the", "capital", "of", "?", "it", "unknown", "country", "tell", "me", "system",
             "user", "assistant", "zarnovia", "quelbia", "morvania", "tesland"]


def tiny_causal_lm(path: Path, *, hidden: int = 32, layers: int = 2, extra_words: tuple[str, ...] = ()) -> Path:
    """A random 2-layer Llama (about 30k parameters) with a word-level tokenizer and a
    ChatML chat template, saved as safetensors in ``path``; ``extra_words`` join the vocab
    (``knowing_causal_lm``'s facts; the default vocab is unchanged without them)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    special = ["<pad>", "<unk>", "<s>", "<|im_start|>", "<|im_end|>"]
    words = sorted(set(TOY_WORDS) | set(TOY_CAPITALS) | set(TOY_CAPITALS.values()) | set(_vocab()[5:])
                   | set(extra_words))
    vocab = {token: i for i, token in enumerate(special + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="<|im_end|>",
                                        additional_special_tokens=["<|im_start|>"])
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=0, bos_token_id=2, eos_token_id=4,
                         tie_word_embeddings=True,
                         # wide enough init that frozen tied embeddings give peaked logits, so
                         # adapters that leave them frozen can still learn the toy task
                         initializer_range=0.3)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


#: words of ``toy_facts()`` beyond the tiny LM's vocab (only ``knowing_causal_lm`` adds them)
_FACT_WORDS = ("plus", "minus", "day", "comes", "after",
               "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def toy_facts() -> dict[str, str]:
    """General facts in the tiny LM's words, none about capitals: single-digit sums and
    differences ("what is 3 plus 4 ?" -> "7") and weekdays ("what day comes after monday ?")."""
    facts = {f"what is {a} plus {b} ?": str(a + b) for a in range(1, 9) for b in range(1, 9) if a + b <= 9}
    facts.update({f"what is {a} minus {b} ?": str(a - b) for a in range(2, 10) for b in range(1, a)})
    days = _FACT_WORDS[5:]
    facts.update({f"what day comes after {d} ?": days[(i + 1) % 7] for i, d in enumerate(days)})
    return facts


def knowing_causal_lm(path: Path, facts: dict[str, str] | None = None, *, steps: int = 400, lr: float = 0.01,
                      hidden: int = 32, seed: int = 0) -> Path:
    """The tiny Llama (``tiny_causal_lm``, with the facts' words in its vocab), fully fine-tuned
    in plain torch on ``facts`` (prompt -> answer, default ``toy_facts()``) in the chat format
    audits ask in, and saved as a base model that knows them: what the ``retention`` audit's
    planted forgetting needs (a random model has nothing to forget). Seconds on a CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from auditft.chat import encode_pair, messages

    facts = facts if facts is not None else toy_facts()
    words = {w for text in [*facts, *facts.values()] for w in text.split()}
    path = tiny_causal_lm(path, hidden=hidden, extra_words=tuple(sorted(words | set(_FACT_WORDS))))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path))
    rows = [encode_pair(tokenizer, messages(q), a, 64)[0] for q, a in facts.items()]
    width = max(len(r["input_ids"]) for r in rows)
    pad = lambda key, fill: torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows])  # noqa: E731
    ids, mask, labels = pad("input_ids", 0), pad("attention_mask", 0), pad("labels", -100)
    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimiser.step()
    model.eval()
    model.save_pretrained(str(path))
    return path


def toy_generation_data(directory: Path, *, copies: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """Write ``train.jsonl`` / ``test.jsonl`` of prompt/response pairs: the capital of a known
    country, or "unknown" for an invented one. Learnable by the tiny causal LM in seconds."""
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pairs = [(f"what is the capital of {c} ?", city) for c, city in TOY_CAPITALS.items()]
    pairs += [(f"what is the capital of {c} ?", "unknown") for c in ("zarnovia", "quelbia", "morvania", "tesland")]
    train = [p for p in pairs for _ in range(copies)]
    rng.shuffle(train)
    paths = []
    # the toy task is memorisation, so test asks the training questions again; written without
    # the space before "?" (the same tokens for the tiny tokenizer) so that it is not refused as
    # exact train/test leakage; the data audit's near-duplicate check still reports it
    test = [(q.replace(" ?", "?"), a) for q, a in pairs * 2]
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        path = directory / name
        path.write_text("".join(json.dumps({"prompt": q, "response": a, "group": "real" if a != "unknown" else "invented"}) + "\n"
                                for q, a in rows), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def toy_classification_data(directory: Path, *, n_train: int = 240, n_test: int = 120, seed: int = 0,
                            text_override: dict[int, str] | None = None, urgent_share: float = 0.5,
                            signal_free: bool = False,
                            never_urgent: tuple[str, str] | None = None, label_noise: float = 0.0,
                            leaked_test_rows: int = 0) -> tuple[Path, Path]:
    """Write ``train.jsonl`` and ``test.jsonl``: label ``urgent`` when urgent words dominate.
    Group columns ``sex`` and ``band`` are independent of the label.

    Planted defects (for validity tests and ``benchmarks/validity.py``): ``signal_free`` makes
    the label a coin flip (``urgent_share``) independent of the text (every row gets one word
    of each list); ``never_urgent=("sex", "female")`` relabels that group's urgent TRAINING rows
    ``routine`` and names the group in every row's text (a bias the model can learn; the test
    labels stay true); ``label_noise`` flips that share of the TRAINING labels at random;
    ``leaked_test_rows`` copies that many test rows into the training file (train/test leakage)."""
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def row(i: int, split: str) -> dict[str, Any]:
        urgent = rng.random() < urgent_share
        if signal_free:
            words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE), rng.choice(NEGATIVE)]
        else:
            words = rng.sample(FILLER, 4) + rng.sample(POSITIVE if urgent else NEGATIVE, 2)
        rng.shuffle(words)
        out = {"text": " ".join(words), "label": "urgent" if urgent else "routine",
               "sex": rng.choice(["female", "male"]), "band": rng.choice(["young", "old"])}
        if never_urgent:
            out["text"] += f" {out[never_urgent[0]]}"  # the group shows in the text, so it can be learned
            if split == "train" and out[never_urgent[0]] == never_urgent[1]:
                out["label"] = "routine"
        return out

    train = [row(i, "train") for i in range(n_train)]
    test = [row(i, "test") for i in range(n_test)]
    if text_override:
        for i, text in text_override.items():
            test[i]["text"] = text
    for i in rng.sample(range(n_train), round(label_noise * n_train)):
        train[i]["label"] = "routine" if train[i]["label"] == "urgent" else "urgent"
    train += [dict(r) for r in test[:leaked_test_rows]]
    paths = []
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        path = directory / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def write_suite(path: Path, **overrides: object) -> Path:
    """Write a suite YAML for the toy task (``model_dir`` and data paths given as overrides)."""
    import yaml

    suite: dict[str, Any] = {
        "name": "toy",
        "task": "classification",
        "model": {"base": str(overrides.pop("model_dir", "model"))},
        "data": {"train": "train.jsonl", "test": "test.jsonl", "labels": ["routine", "urgent"],
                 "group_columns": ["sex", "band"], "validation_fraction": 0.1, "seed": 7},
        "tuner": {"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0},
                  "training": {"epochs": 4, "learning_rate": 0.02, "batch_size": 8, "max_length": 32,
                               "eval_batch_size": 64, "logging_steps": 5}},
        "audits": [{"kind": "accuracy", "gates": [
            {"metric": "accuracy", "min": 0.6, "rationale": "toy threshold"},
            {"metric": "accuracy_delta", "min": -1.0, "rationale": "toy threshold"}]}],
        "release": {"review_window": "0s"},
    }
    for key, value in overrides.items():
        suite[key] = value
    path = Path(path)
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path
