"""Checks on a training set before any tuning: pure functions, no plugin glue.

* ``label_issues``: out-of-fold class probabilities from a cheap model (logistic regression on
  the features given, e.g. the base model's mean-pooled embeddings), then confident learning
  (cleanlab) flags rows whose given label is probably wrong.
* ``find_duplicates``: exact duplicates (normalised text) and near duplicates (MinHash LSH on
  word shingles, confirmed with the exact Jaccard similarity) within the training rows and
  between training and test rows.
* ``representation``: rows and label balance per group and per intersection of groups.
* ``detect_pii`` / ``mask_pii``: emails, phone numbers, Luhn-valid payment cards, US SSNs and
  UK National Insurance numbers, with masked forms so reports never repeat them.
* ``token_lengths``: how many rows the tokenizer would cut at ``max_length``.

Inputs are plain lists and arrays indexed by position; callers map positions to file rows.
Heavy libraries (sklearn, cleanlab, datasketch) are imported inside the functions.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

# -- label issues ----------------------------------------------------------------------------------


@dataclass
class LabelIssues:
    """Rows flagged by confident learning, worst first.

    ``indices`` are positions in the inputs; ``suggested`` the most probable label under the
    out-of-fold model; ``quality`` the out-of-fold probability of the given label (cleanlab's
    self-confidence: low means the model doubts the label).
    """

    indices: list[int]
    suggested: list[int]
    quality: list[float]
    pred_probs: np.ndarray
    folds: int
    #: out-of-fold accuracy of the cheap model on the given labels (how much to trust it)
    cv_accuracy: float


def out_of_fold_probs(features: Any, labels: np.ndarray, *, folds: int = 5, seed: int = 0,
                      c: float = 1.0) -> tuple[np.ndarray, int]:
    """Out-of-fold ``predict_proba`` of a logistic regression (stratified, seeded folds): each
    row is scored by a model that never saw it, as confident learning requires. Dense features
    (embeddings) are standardised first; sparse ones (TF-IDF) are used as they are. Returns the
    probabilities and the number of folds used (fewer when a class is smaller than ``folds``)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = min(Counter(labels.tolist()).values())
    if smallest < 2:
        raise ValueError(f"out-of-fold probabilities need at least 2 rows of every label; one has {smallest}")
    k = min(folds, smallest)
    if not sparse.issparse(features):
        features = np.asarray(features, dtype=float)
    classifier = LogisticRegression(max_iter=3000, C=c, random_state=seed)
    model = classifier if sparse.issparse(features) else make_pipeline(StandardScaler(), classifier)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    probs = cross_val_predict(model, features, labels, cv=cv, method="predict_proba")
    return np.asarray(probs, dtype=float), k


def text_features(texts: Sequence[str], embeddings: np.ndarray | None = None) -> Any:
    """Sparse TF-IDF of word 1-2 grams (seen in at least 2 rows), optionally beside the
    L2-normalised embeddings. Fitted on every row without labels: no label information leaks
    across folds."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    min_df = 2 if len(texts) >= 10 else 1
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True).fit_transform(list(texts))
    if embeddings is None:
        return tfidf.tocsr()
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    dense = embeddings / np.where(norms > 0, norms, 1.0)
    return sparse.hstack([tfidf, sparse.csr_matrix(dense)]).tocsr()


def label_issues(features: Any, labels: Sequence[int], *, folds: int = 5, seed: int = 0,
                 c: float = 1.0, filter_by: str = "prune_by_noise_rate") -> LabelIssues:
    """Confident learning on out-of-fold probabilities; labels are remapped to the classes
    present (a declared label with no rows has no column) and mapped back."""
    from cleanlab.filter import find_label_issues

    given = np.asarray(labels, dtype=np.int64)
    classes = np.unique(given)
    if len(classes) < 2:
        raise ValueError("label-issue detection needs at least two labels present")
    counts = np.bincount(np.searchsorted(classes, given))
    if counts.min() < 2:
        raise ValueError(f"label-issue detection needs at least 2 rows of every label present; label "
                         f"{int(classes[counts.argmin()])} has {int(counts.min())}")
    compact = np.searchsorted(classes, given)
    probs, k = out_of_fold_probs(features, compact, folds=folds, seed=seed, c=c)
    ranked = find_label_issues(compact, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence",
                               n_jobs=1)  # no worker processes on a shared machine
    ranked = [int(i) for i in ranked]
    return LabelIssues(
        indices=ranked,
        suggested=[int(classes[int(probs[i].argmax())]) for i in ranked],
        quality=[float(probs[i, compact[i]]) for i in ranked],
        pred_probs=probs,
        folds=k,
        cv_accuracy=float((probs.argmax(axis=1) == compact).mean()),
    )


# -- duplicates and leakage ------------------------------------------------------------------------


class _PunctuationToSpace(dict):
    """``str.translate`` table: any Unicode punctuation -> space, looked up once per character."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        self[code] = value = " " if unicodedata.category(ch).startswith("P") else ch
        return value


_PUNCTUATION = _PunctuationToSpace()


def normalise(text: str) -> str:
    """Compatibility-normalised (NFKC), case-folded, punctuation replaced by spaces,
    whitespace collapsed: 'Ｆever,  NO cough!' and 'fever no cough' compare equal."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(text.translate(_PUNCTUATION).split())


def shingles(text: str, size: int = 1) -> set[str]:
    """Word n-grams of the normalised text (a text shorter than ``size`` is one shingle)."""
    return _shingles(normalise(text), size)


def _shingles(normalised: str, size: int) -> set[str]:
    words = normalised.split()
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Pair:
    """Two rows with the same or nearly the same text: ``a`` and ``b`` are positions in the
    inputs (for train/test pairs, ``a`` in train and ``b`` in test)."""

    a: int
    b: int
    kind: str  # "exact" | "near"
    similarity: float


@dataclass
class Duplicates:
    #: within the training rows: each repeated row ``b`` against the earlier row ``a`` it repeats
    #: (exact), or the first rows of two near-duplicate texts (near)
    train_pairs: list[Pair] = field(default_factory=list)
    #: training row ``a`` vs test row ``b``: one pair per test row and matching training text
    cross_pairs: list[Pair] = field(default_factory=list)
    #: training positions that repeat an earlier training row (all but the first of each cluster)
    redundant: list[int] = field(default_factory=list)
    #: test positions with an exact or near duplicate among the training rows
    leaked_test: list[int] = field(default_factory=list)
    #: training positions whose text is the same as, or near, some test row's
    leaking_train: list[int] = field(default_factory=list)


def find_duplicates(train: Sequence[str], test: Sequence[str] = (), *, threshold: float = 0.8,
                    shingle_size: int = 1, num_perm: int = 128, seed: int = 1) -> Duplicates:
    """Exact duplicates by normalised text, near duplicates by MinHash LSH over the distinct
    normalised texts. LSH candidates are confirmed with the exact Jaccard similarity of the
    shingle sets (``>= threshold``), so every reported pair is real; the LSH bands are chosen to
    miss almost no pair at the threshold (``lsh_bands``). Work and output grow with the distinct texts and real
    pairs, not with the square of a text's copies."""
    keys = [normalise(t) for t in list(train) + list(test)]
    n_train = len(train)
    distinct = list(dict.fromkeys(keys))
    index = {k: i for i, k in enumerate(distinct)}
    tr: dict[int, list[int]] = defaultdict(list)  # distinct text -> training positions
    te: dict[int, list[int]] = defaultdict(list)  # distinct text -> test positions
    for i, k in enumerate(keys):
        (tr if i < n_train else te)[index[k]].append(i if i < n_train else i - n_train)
    near = _near_pairs(distinct, threshold, shingle_size, num_perm, seed)
    out = Duplicates()
    parent = list(range(len(distinct)))  # union-find over distinct texts with training rows
    for d, rows in tr.items():
        out.train_pairs += [Pair(rows[0], r, "exact", 1.0) for r in rows[1:]]
        out.cross_pairs += [Pair(rows[0], t, "exact", 1.0) for t in te.get(d, [])]
    for d1, d2, sim in near:
        if d1 in tr and d2 in tr:
            out.train_pairs.append(Pair(min(tr[d1][0], tr[d2][0]), max(tr[d1][0], tr[d2][0]), "near", sim))
            parent[_root(parent, d2)] = _root(parent, d1)
        for a, b in ((d1, d2), (d2, d1)):
            if a in tr:
                out.cross_pairs += [Pair(tr[a][0], t, "near", sim) for t in te.get(b, [])]
    clusters: dict[int, list[int]] = defaultdict(list)
    for d, rows in tr.items():
        clusters[_root(parent, d)] += rows
    out.redundant = sorted(r for rows in clusters.values() for r in sorted(rows)[1:])
    out.leaked_test = sorted({p.b for p in out.cross_pairs})
    touching = {d for d in te} | {a for d1, d2, _ in near for a, b in ((d1, d2), (d2, d1)) if b in te}
    out.leaking_train = sorted(r for d in touching for r in tr.get(d, []))
    order = {"exact": 0, "near": 1}
    out.train_pairs.sort(key=lambda p: (order[p.kind], -p.similarity, p.a, p.b))
    out.cross_pairs.sort(key=lambda p: (order[p.kind], -p.similarity, p.a, p.b))
    return out


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def lsh_bands(threshold: float, num_perm: int, recall: float = 0.999) -> tuple[int, int]:
    """(bands, rows per band) with the most rows per band (fewest false candidates) such that
    a pair exactly at ``threshold`` is an LSH candidate with probability ``>= recall``:
    ``1 - (1 - s**r)**b``. datasketch's own choice balances misses against false candidates:
    at 0.8 it catches only 40% of the pairs at 0.8; a false candidate costs only an exact check."""
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1 - (1 - threshold ** r) ** b >= recall:
            return b, r
    return num_perm, 1


def _near_pairs(texts: list[str], threshold: float, size: int, num_perm: int,
                seed: int) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) for distinct normalised ``texts`` i < j whose shingle sets reach ``threshold``."""
    from datasketch import MinHash, MinHashLSH

    sets = [_shingles(t, size) for t in texts]
    usable = [i for i, s in enumerate(sets) if s]  # an empty text is only an exact duplicate
    if len(usable) < 2:
        return []
    lsh = MinHashLSH(num_perm=num_perm, params=lsh_bands(threshold, num_perm))
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sets[i]] for i in usable], num_perm=num_perm, seed=seed)
    for i, m in zip(usable, hashes):
        lsh.insert(i, m)
    pairs = []
    for i, m in zip(usable, hashes):
        for j in lsh.query(m):
            if j > i:
                sim = jaccard(sets[i], sets[j])
                if sim >= threshold:
                    pairs.append((i, int(j), sim))
    return pairs


# -- representation -------------------------------------------------------------------------------


@dataclass
class GroupCount:
    view: str  # a column name, or "a & b" for the intersection
    label: str  # "sex=female", or "sex=female & band=old"
    count: int
    labels: dict[str, int]  # rows per class (classification)
    small: bool


def representation(groups: Sequence[dict[str, str]], columns: Sequence[str], minimum: int,
                   labels: Sequence[int | None] | None = None,
                   label_names: Sequence[str] = ()) -> dict[str, Any]:
    """Rows per group, per intersection of all group columns, and per label within each.

    Only combinations that occur are counted; ``absent`` lists the combinations of observed
    values that never occur (the data cannot say whether they exist in the population)."""
    def name(k: int | None) -> str:
        return label_names[k] if k is not None and 0 <= k < len(label_names) else str(k)

    out: dict[str, Any] = {"columns": [], "intersections": [], "absent": [], "overall_labels": {}}
    if labels is not None:
        out["overall_labels"] = dict(sorted(Counter(name(k) for k in labels).items()))
    views: list[tuple[str, list[str]]] = [(c, [c]) for c in columns]
    if len(columns) > 1:
        views.append((" & ".join(columns), list(columns)))
    for view, cols in views:
        keys = [" & ".join(f"{c}={g.get(c, '(missing)')}" for c in cols) for g in groups]
        counts = Counter(keys)
        per_label: dict[str, Counter[str]] = defaultdict(Counter)
        if labels is not None:
            for key, k in zip(keys, labels):
                per_label[key][name(k)] += 1
        rows = [GroupCount(view, key, n, dict(sorted(per_label[key].items())), n < minimum)
                for key, n in sorted(counts.items())]
        out["intersections" if len(cols) > 1 else "columns"].extend(rows)
        if len(cols) > 1:
            values = [sorted({g.get(c, "(missing)") for g in groups}) for c in cols]
            combos = (" & ".join(f"{c}={v}" for c, v in zip(cols, combo)) for combo in product(*values))
            out["absent"] = [key for key in combos if key not in counts][:200]
    return out


# -- personal data ----------------------------------------------------------------------------------

PII_TYPES = ("email", "phone", "credit_card", "ssn", "nino")

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")
CARD = re.compile(r"(?<![\d-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d-])")
SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
# UK NINO (upper case): two prefix letters (HMRC excludes D F I Q U V, and O second), 6 digits, suffix A-D
NINO = re.compile(r"\b([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b")
NINO_UNUSED_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
PHONE = re.compile(
    r"(?<![\w+/.-])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{2,5}){1,4}"  # international: +44 20 7946 0958
    r"|\(\d{3}\)\s?\d{3}[\s.-]\d{4}"  # North American: (202) 555-0143
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 202-555-0143, 202.555.0143
    r"|0\d(?:[\s.]\d{2}){4}"  # French style: 01 23 45 67 89
    r"|0\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}"  # trunk prefix 0: 020 7946 0958, 07700 900123
    r")(?![\w/-])"
)


@dataclass(frozen=True)
class PiiFinding:
    type: str
    text: str
    start: int
    end: int

    @property
    def masked(self) -> str:
        return mask_value(self.type, self.text)


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) checksum of a payment card number (ISO/IEC 7812); separators ignored."""
    ds = digits(number)
    if not 13 <= len(ds) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(ds)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """US SSN ranges never issued: area 000, 666 and 900-999, group 00, serial 0000."""
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def detect_pii(text: str, types: Sequence[str] = PII_TYPES) -> list[PiiFinding]:
    """Personal data in ``text``, in order. Stronger evidence claims a span first (a checked
    card number, SSN or NINO is not reported again as a phone number)."""
    found: list[PiiFinding] = []

    def add(kind: str, m: re.Match[str]) -> None:
        if kind in types and all(m.end() <= f.start or m.start() >= f.end for f in found):
            found.append(PiiFinding(kind, m.group(0), m.start(), m.end()))

    for m in EMAIL.finditer(text):
        add("email", m)
    for m in CARD.finditer(text):
        if luhn_valid(m.group(0)) and len({ch for ch in m.group(0) if not ch.isdigit()}) <= 1:
            add("credit_card", m)
    for m in SSN.finditer(text):
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            add("ssn", m)
    for m in NINO.finditer(text):
        prefix = (m.group(1) + m.group(2)).upper()
        if prefix not in NINO_UNUSED_PREFIXES:
            add("nino", m)
    # a card- or SSN-shaped number that failed its own check is not a phone number either
    shaped = [m.span() for pattern in (CARD, SSN) for m in pattern.finditer(text)]
    for m in PHONE.finditer(text):
        n = len(digits(m.group(0)))
        if 7 <= n <= 15 and not any(s <= m.start() < e or s < m.end() <= e for s, e in shaped):
            add("phone", m)
    return sorted(found, key=lambda f: f.start)


def mask_value(kind: str, value: str) -> str:
    """Keep the shape, hide the content: ``jane@example.com`` -> ``j***@e***.com``; a card keeps
    its last 4 digits (``**** **** **** 1234``), other numbers their last 2 characters."""
    if kind == "email":
        local, _, domain = value.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}"
    keep = 4 if kind == "credit_card" else 2
    total = sum(ch.isalnum() for ch in value)
    out, seen = [], 0
    for ch in value:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_pii(text: str, types: Sequence[str] = PII_TYPES) -> str:
    """``text`` with every finding replaced by its masked form (for exports and reports)."""
    out, last = [], 0
    for f in detect_pii(text, types):
        out += [text[last:f.start], f.masked]
        last = f.end
    return "".join(out) + text[last:]


@dataclass
class PiiScan:
    counts: dict[str, int]  # findings per type
    rows_by_type: dict[str, list[int]]  # positions with at least one finding of the type
    rows: list[int]  # positions with any finding
    examples: list[dict[str, Any]]  # masked only


def scan_pii(texts: Sequence[str], types: Sequence[str] = PII_TYPES, *, max_examples: int = 10) -> PiiScan:
    counts: Counter[str] = Counter()
    by_type: dict[str, list[int]] = {t: [] for t in types}
    rows, examples = [], []
    for i, text in enumerate(texts):
        findings = detect_pii(text, types)
        if not findings:
            continue
        rows.append(i)
        for kind in dict.fromkeys(f.type for f in findings):
            by_type[kind].append(i)
        counts.update(f.type for f in findings)
        if len(examples) < max_examples:
            examples.append({"position": i, "types": sorted({f.type for f in findings}),
                             "masked": [f.masked for f in findings]})
    return PiiScan({t: counts.get(t, 0) for t in types}, by_type, rows, examples)


# -- token lengths ----------------------------------------------------------------------------------


@dataclass
class LengthStats:
    lengths: list[int]
    max_length: int
    truncated: list[int]  # positions longer than max_length

    def summary(self) -> dict[str, Any]:
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


def token_lengths(texts: Sequence[str], count: Callable[[list[str]], list[int]], max_length: int) -> LengthStats:
    """Token counts from ``count`` (a batch of texts -> token counts, as training tokenises them)
    and the rows that training would truncate at ``max_length``."""
    lengths = [int(n) for n in count(list(texts))] if texts else []
    return LengthStats(lengths, max_length, [i for i, n in enumerate(lengths) if n > max_length])
