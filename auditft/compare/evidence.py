"""Per-row outcomes on the test split, written into the run directory before the gate
(``evidence/test_rows.jsonl``), so two runs on the same rows can be compared with a paired
interval (``auditft compare``).

One JSON object per test row, in test-split order:

* ``i``: position in the test split; ``key``: sha256 of the row's text, label and reference
  answer (the same row in two runs has the same key); ``row``: its 0-based row in its file;
* ``groups``: the row's group columns; ``cluster``: its ``data.cluster_column`` value or null;
* classification: ``truth``, ``adapter`` and ``base`` (class indices; ``base`` null when no
  audit scored the base model; the base is a linear probe on its embeddings);
* generation: ``adapter`` and ``base`` (null when not scored) each ``{"exact_match",
  "token_f1", "answer_contained"}`` against the reference answer.

Beside it, ``evidence/resources.json``: the run process's peak resident memory (and CUDA peak)
when the rows are written, i.e. over training and audits together.

Both are written while the run is ``auditing``, before ``report.json`` and ``manifest.json``,
so they are artefacts like any other: hashed in the manifest and bound by every approval.
Only predictions the audits already computed are read (the session caches them): writing it
costs no inference.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditft.fsutil import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from auditft.data import Example, SplitData
    from auditft.records import AuditResult

#: where the rows live, relative to the run directory
EVIDENCE_FILE = "evidence/test_rows.jsonl"
#: the run process's peak memory, measured when the rows are written (after the audits)
RESOURCES_FILE = "evidence/resources.json"
SCORES = ("exact_match", "token_f1", "answer_contained")


def row_key(example: Example) -> str:
    """The row's identity across runs: its text, label and reference answer, nothing else."""
    blob = json.dumps([example.text, example.label, example.response], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_test_rows(run_dir: Path, task: str, data: SplitData, session: Any,
                    results: dict[str, AuditResult]) -> Path | None:
    """Write ``EVIDENCE_FILE`` from the session's cached predictions; None when the adapter
    cannot be scored (the validity check already says why) or there is no test split."""
    test = data.test
    if not test:
        return None
    # the base model's figures only where the accuracy audit computed them (cached, no inference)
    with_base = "accuracy" in results and results["accuracy"].error is None
    try:
        outcomes = (_classification(test, session, with_base) if task == "classification"
                    else _generation(test, session, with_base))
    except Exception:  # noqa: BLE001 - a model that cannot be scored is core:validity's finding
        return None
    lines = []
    for i, (example, outcome) in enumerate(zip(test, outcomes)):
        record = {"i": i, "key": row_key(example), "row": example.row, "groups": dict(example.groups),
                  "cluster": example.cluster, **outcome}
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
    path = Path(run_dir) / EVIDENCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_json(Path(run_dir) / RESOURCES_FILE, peak_memory())
    return path


#: set by ``reset_peak_memory``: the peak then counts from that run's start, not the process's
_RESET = {"done": False}


def reset_peak_memory() -> None:
    """Start the peak-memory count afresh: a process that runs several runs one after the other
    (``auditft.recipes``) measures each run's own peak. Linux resets the resident high-water
    mark through ``/proc/self/clear_refs``; elsewhere the peak stays the process's."""
    import sys

    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        _RESET["done"] = True
    except OSError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, Any]:
    """The peak resident set size so far (training and audits together) and, on a CUDA device,
    the peak memory torch allocated on it."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    try:  # Linux: the high-water mark clear_refs resets
        with open("/proc/self/status", encoding="ascii") as handle:
            rss = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    cuda = None
    torch = sys.modules.get("torch")  # already imported by the run; never import it here
    if torch is not None and torch.cuda.is_available():
        cuda = int(torch.cuda.max_memory_allocated())
    since = ("from the start of this run (one of several in one process: the peak was reset when it started; "
             "what earlier runs left loaded, such as the shared base model, counts)") if _RESET["done"] \
        else "of the run process from its start"
    return {"peak_rss_bytes": int(rss), "cuda_peak_bytes": cuda,
            "measured": f"peak resident set size {since} to the end of the audits "
                        "(training and audits together; a resumed run counts only its last process)"}


def read_resources(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RESOURCES_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def _classification(test: list[Example], session: Any, with_base: bool) -> list[dict[str, Any]]:
    pred = session.adapter_proba("test").argmax(axis=1)
    base = session.base_probe_proba("test").argmax(axis=1) if with_base else None
    return [{"truth": ex.label, "adapter": int(pred[i]), "base": None if base is None else int(base[i])}
            for i, ex in enumerate(test)]


def _generation(test: list[Example], session: Any, with_base: bool) -> list[dict[str, Any]]:
    from auditft.textmetrics import contains_answer, exact_match, token_f1

    prompts = [ex.text for ex in test]  # the exact list validity and accuracy asked: a cache hit
    answers = {"adapter": session.generate(prompts, which="adapter")}
    if with_base:
        answers["base"] = session.generate(prompts, which="base")

    def scored(answer: str, reference: str) -> dict[str, float]:
        return {"exact_match": exact_match(answer, reference), "token_f1": token_f1(answer, reference),
                "answer_contained": contains_answer(answer, reference)}

    return [{which: (scored(answers[which][i], ex.response or "") if which in answers else None)
             for which in ("adapter", "base")} for i, ex in enumerate(test)]


def read_test_rows(run_dir: Path) -> list[dict[str, Any]] | None:
    """The run's rows, or None when it has none (a run from before this file existed)."""
    path = Path(run_dir) / EVIDENCE_FILE
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
