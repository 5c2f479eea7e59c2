"""The model session's scoring of texts that are no split's rows (``proba_texts``) and of given
answers (``answer_logprobs``): what the robustness, retention and calibration audits build on."""

from __future__ import annotations

import numpy as np
import pytest

from auditft.data import load_data
from auditft.inference import ModelSession
from auditft.models import resolve_model
from auditft.plan import prepare
from auditft.testing import isolated_plugin_manager, tiny_causal_lm, toy_generation_data, write_suite


@pytest.fixture(scope="module")
def classification(finished_run):
    _, run_dir = finished_run
    suite_path = run_dir.parent.parent / "suite.yaml"
    pm = isolated_plugin_manager()
    prepared = prepare(suite_path, pm)
    suite = prepared.suite
    data = load_data(suite)
    base = resolve_model(suite.model.base, base_dir=suite.source.parent)
    tuner = prepared.tuner.factory(prepared.tuner_options)
    return ModelSession.for_suite(suite, base, data, tuner=tuner, adapter_dir=run_dir / "adapter")


def test_proba_texts_on_the_test_texts_equals_the_split_scores(classification):
    texts = [ex.text for ex in classification.data.test]
    for which, split_scores in (("adapter", classification.adapter_proba("test")),
                                ("base", classification.base_probe_proba("test"))):
        np.testing.assert_allclose(classification.proba_texts(texts, which=which), split_scores, atol=1e-5)


def test_proba_texts_scores_new_texts_and_rejects_an_unknown_model(classification):
    proba = classification.proba_texts(["severe sudden bleeding", "mild chronic refill"], which="adapter")
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba[0].argmax() == 1 and proba[1].argmax() == 0  # the toy task was learnt
    with pytest.raises(ValueError, match="which must be"):
        classification.proba_texts(["x"], which="teacher")


def test_answer_logprobs_prefers_the_answer_the_model_was_trained_on(tmp_path):
    """A causal LM trained to answer 'nairobi' gives that answer a higher per-token
    log-probability than a wrong capital; the base model (adapter disabled) does not."""
    from auditft.run import execute

    model = tiny_causal_lm(tmp_path / "lm")
    toy_generation_data(tmp_path, copies=6)
    suite_path = write_suite(tmp_path / "suite.yaml", model_dir=model, task="generation",
                             data={"train": "train.jsonl", "test": "test.jsonl", "validation_fraction": 0.1, "seed": 7},
                             tuner={"kind": "lora", "options": {"r": 4, "alpha": 8, "dropout": 0.0},
                                    "training": {"epochs": 6, "learning_rate": 0.02, "batch_size": 8,
                                                 "max_length": 32, "eval_batch_size": 64, "logging_steps": 5}},
                             audits=[{"kind": "accuracy", "gates": [{"metric": "answer_contained", "min": 0.5, "rationale": "t"}]}],
                             generation={"max_new_tokens": 4})
    pm = isolated_plugin_manager()
    report = execute(prepare(suite_path, pm), pm, reports=tmp_path / "reports", author="t")
    run_dir = tmp_path / "reports" / report["run_id"]
    prepared = prepare(suite_path, pm)
    suite = prepared.suite
    session = ModelSession.for_suite(suite, resolve_model(suite.model.base, base_dir=tmp_path), load_data(suite),
                                     tuner=prepared.tuner.factory(prepared.tuner_options),
                                     adapter_dir=run_dir / "adapter")
    from auditft.testing import TOY_CAPITALS

    prompts = [f"what is the capital of {c} ?" for c in sorted(TOY_CAPITALS)]
    right = [TOY_CAPITALS[c] for c in sorted(TOY_CAPITALS)]
    wrong = right[1:] + right[:1]  # another country's capital
    adapter_right = session.answer_logprobs(prompts, right, which="adapter")
    adapter_wrong = session.answer_logprobs(prompts, wrong, which="adapter")
    base_right = session.answer_logprobs(prompts, right, which="base")
    assert adapter_right.shape == (len(prompts),) and np.all(adapter_right < 0)
    # training raised the trained answers' probability, above the base's and above wrong capitals
    assert adapter_right.mean() > base_right.mean() + 1.0, (adapter_right, base_right)
    assert adapter_right.mean() > adapter_wrong.mean(), (adapter_right, adapter_wrong)
    # batching and padding change nothing: one prompt at a time gives the same figures
    single = ModelSession.for_suite(suite, session.base, session.data, tuner=session.tuner,
                                    adapter_dir=session.adapter_dir)
    single.batch_size = 1
    np.testing.assert_allclose(single.answer_logprobs(prompts, right), adapter_right, atol=1e-4)
    with pytest.raises(ValueError, match="2 prompts but 1 answers"):
        session.answer_logprobs(prompts[:2], ["nairobi"])


def test_base_embeddings_are_computed_once_per_text(classification):
    """Issue 19: the base encoder embeds each distinct text once per session, whoever asks (a
    split, k-fold's sample of train rows, ``proba_texts``); the vectors are the split's own."""
    def session() -> ModelSession:
        return ModelSession(tuner=None, base=classification.base, data=classification.data, adapter_dir=None,
                            max_length=classification.max_length, batch_size=classification.batch_size,
                            seed=classification.seed)

    fresh, counted = session(), session()
    embedded: list[list[str]] = []
    original = counted._batched

    def counting(model, tokenizer, texts, head, what):
        embedded.append(list(texts))
        return original(model, tokenizer, texts, head, what)

    counted._batched = counting  # type: ignore[method-assign]
    texts = [ex.text for ex in counted.data.train]
    train = counted.base_embeddings("train")
    assert embedded == [list(dict.fromkeys(texts))] and train.shape[0] == len(texts)
    embedded.clear()
    new = "a note that is in no split"
    sample = [*texts[::3], new, texts[0], new]
    vectors = counted.base_embed_texts(sample)
    assert embedded == [[new]]  # only the text not seen before, once
    np.testing.assert_array_equal(vectors[:len(texts[::3])], train[::3])
    np.testing.assert_array_equal(vectors[-1], vectors[-3])
    # the same figures as a session embedding them in batches of its own
    np.testing.assert_allclose(vectors, fresh.base_embed_texts(sample), atol=1e-5)
    embedded.clear()
    counted.proba_texts(texts[:5], which="base")
    assert embedded == []
