"""Tests of the myaudit plugin: its logic, and auditft's conformance check."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import auditft_myaudit
from auditft.testing import check_audit


def test_is_short():
    assert auditft_myaudit.is_short("", 1) and auditft_myaudit.is_short("paris", 1)
    assert not auditft_myaudit.is_short("the capital is paris", 1)


def test_conforms_to_the_auditft_plugin_contract():
    result = check_audit(auditft_myaudit, "myaudit", task="generation")
    assert "short_answer_rate" in result.metrics
