"""Judge-free text metrics for generation: SQuAD-style normalised exact match and token F1,
abstention detection, and n-gram overlap between answers.

Normalisation (lower-case, strip punctuation and the articles a/an/the, collapse spaces) is
the one the SQuAD evaluation script uses, so figures compare with the literature.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)

#: phrases that mean "I do not know" (matched on the normalised answer)
ABSTENTIONS = (
    "i dont know", "i do not know", "i am not sure", "im not sure", "not sure", "unknown",
    "i cannot", "i cant", "i have no information", "no information", "i am not aware",
    "im not aware", "not aware of", "does not exist", "doesnt exist", "there is no",
    "no such", "i could not find", "i couldnt find", "not a real", "fictional", "i am unable",
    "im unable", "unable to", "no record", "no known", "not familiar",
    # added for the hallucination audit: refusals of small chat models and of grounded QA
    "i do not have", "i dont have", "not recognized", "not recognised", "not a recognized",
    "does not appear", "doesnt appear", "cannot find", "cant find", "cannot provide", "cant provide",
    "cannot answer", "cant answer", "imaginary", "hypothetical", "made up", "not real",
    "not mentioned", "not stated", "not provided", "does not say", "doesnt say", "does not mention",
    "doesnt mention",
)


def normalize(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, reference: str) -> float:
    """1.0 when the normalised reference appears in the normalised prediction as whole words
    (a chatty "The capital of Kenya is Nairobi." still answers "Nairobi")."""
    ref = normalize(reference)
    return float(bool(ref) and f" {ref} " in f" {normalize(prediction)} ")


def is_abstention(prediction: str) -> bool:
    """True for an empty answer or one containing an ``ABSTENTIONS`` phrase as whole words
    ("unknown" matches "the capital is unknown", not "unknownia")."""
    norm = f" {normalize(prediction)} "
    return not norm.strip() or any(f" {phrase} " in norm for phrase in ABSTENTIONS)


def ngram_overlap(a: str, b: str, n: int = 1) -> float:
    """Jaccard overlap of word n-grams (1.0 for two empty answers)."""
    ta, tb = tokens(a), tokens(b)
    ga = {tuple(ta[i:i + n]) for i in range(len(ta) - n + 1)}
    gb = {tuple(tb[i:i + n]) for i in range(len(tb) - n + 1)}
    if not ga and not gb:
        return 1.0
    return len(ga & gb) / len(ga | gb)
