"""The hash-chained ledger: appends link, edits and deletions are detected."""

from __future__ import annotations

import json

from auditft.signoff.ledger import Ledger


def _ledger(tmp_path, n=4):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for i in range(n):
        ledger.append({"type": "created", "run_id": f"r{i}", "actor": "a"})
    return ledger


def test_chain_links_and_verifies(tmp_path):
    ledger = _ledger(tmp_path)
    events = ledger.events()
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[0]["prev"] == "0" * 64
    assert ledger.verify() == []
    assert [e["run_id"] for e in ledger.events("r2")] == ["r2"]


def test_edit_is_detected(tmp_path):
    ledger = _ledger(tmp_path)
    lines = ledger.path.read_text().splitlines()
    event = json.loads(lines[1])
    event["actor"] = "mallory"
    lines[1] = json.dumps(event, sort_keys=True)
    ledger.path.write_text("\n".join(lines) + "\n")
    problems = ledger.verify()
    assert problems and problems[0].line == 2 and "edited" in problems[0].problem


def test_deleted_middle_line_is_detected(tmp_path):
    ledger = _ledger(tmp_path)
    lines = ledger.path.read_text().splitlines()
    del lines[1]
    ledger.path.write_text("\n".join(lines) + "\n")
    problems = ledger.verify()
    assert problems and problems[0].line == 2
