"""Duplicates and train/test leakage: exact copies (normalised text) and near duplicates
(MinHash LSH over word shingles, confirmed by the exact Jaccard similarity), within the
training rows and between training and test rows.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditft.default_plugins.audits.data.findings import Findings, rate, row_text, show

if TYPE_CHECKING:
    from auditft.data import Example
    from auditft.default_plugins.audits.data.options import DataOptions
    from auditft.jobs import AuditJob


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


def check_duplicates(job: AuditJob, rows: list[Example], out: Findings, options: DataOptions) -> None:
    """The audit step: ``duplicate_rate``, ``train_test_overlap_rate``, the rows involved and
    example pairs (exact pairs with conflicting labels shown first)."""
    opts = options
    test = list(job.data.test)
    found = find_duplicates([row_text(ex) for ex in rows], [row_text(ex) for ex in test],
                            threshold=opts.near_duplicate_threshold, shingle_size=opts.shingle_size,
                            num_perm=opts.num_perm, seed=job.seed)
    n = len(rows)
    out.metrics["duplicate_rate"] = rate(len(found.redundant), n)
    out.rows["duplicate_rows"] = sorted(rows[i].row for i in found.redundant)
    out.rows["overlap_rows"] = sorted({rows[i].row for i in found.leaking_train})
    if test:
        out.metrics["train_test_overlap_rate"] = rate(len(found.leaked_test), len(test))
    else:
        out.notes.append("Train/test overlap: there are no test rows to compare with.")
    exact_test = {p.b for p in found.cross_pairs if p.kind == "exact"}
    classification = job.task == "classification"

    def label(ex: Example) -> str | None:
        return job.data.labels[ex.label] if classification and ex.label is not None else None

    # an exact copy whose label differs from the first copy's: at least one of them is wrong
    conflicting = [p for p in found.train_pairs if p.kind == "exact" and rows[p.a].label != rows[p.b].label]
    shown_first = set(conflicting)

    def pair(a: Example, b: Example, p: Pair) -> dict[str, Any]:
        return {"a_row": a.row, "a_source": a.source, "b_row": b.row, "b_source": b.source, "kind": p.kind,
                "similarity": round(p.similarity, 4), "a_text": show(row_text(a)), "b_text": show(row_text(b)),
                "a_label": label(a), "b_label": label(b)}

    k = opts.max_examples
    out.evidence["duplicates"] = {
        "threshold": opts.near_duplicate_threshold, "shingle_size": opts.shingle_size, "num_perm": opts.num_perm,
        "n_train": n, "n_test": len(test),
        "train_pairs": {"exact": sum(p.kind == "exact" for p in found.train_pairs),
                        "near": sum(p.kind == "near" for p in found.train_pairs)},
        "redundant_rows": len(found.redundant), "conflicting_label_pairs": len(conflicting),
        "leaked_test_rows": len(found.leaked_test), "leaked_exact": len(exact_test),
        "leaked_near_only": len(set(found.leaked_test) - exact_test),
        "overlap_train_rows": len(found.leaking_train),
        "cross_examples": [pair(rows[p.a], test[p.b], p) for p in found.cross_pairs[:k]],
        "train_examples": [pair(rows[p.a], rows[p.b], p) for p in (conflicting + [
            p for p in found.train_pairs if p not in shown_first])[:k]],
    }
    out.notes.append(
        "Duplicates: texts are compared after NFKC normalisation, case folding, punctuation removal and "
        f"whitespace collapsing; near duplicates are MinHash LSH candidates ({opts.num_perm} permutations) over "
        f"{opts.shingle_size}-word shingles whose exact Jaccard similarity is at least "
        f"{opts.near_duplicate_threshold:g}. duplicate_rate is the share of training rows that repeat an "
        "earlier one (all but one row per cluster); train_test_overlap_rate is the share of test rows with an "
        "exact or near duplicate among the training rows; overlap_rows lists the train-file rows involved."
        + (" For generation, a row's text is its prompt and response." if job.task == "generation" else ""))
