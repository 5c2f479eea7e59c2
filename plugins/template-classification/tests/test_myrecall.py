"""Tests of the myrecall plugin: its logic, and auditft's conformance check."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

import auditft_myrecall
from auditft.testing import check_audit


def test_per_class_recall():
    y = np.array([0, 0, 1, 1, 1])
    pred = np.array([0, 1, 1, 1, 0])
    recall = auditft_myrecall.per_class_recall(y, pred, 3)
    assert recall[0] == 0.5 and abs(recall[1] - 2 / 3) < 1e-12 and np.isnan(recall[2])  # class 2 has no rows


def test_conforms_to_the_auditft_plugin_contract():
    result = check_audit(auditft_myrecall, "myrecall", task="classification")
    assert set(result.metrics) == set(auditft_myrecall.METRICS)
    assert result.metrics["min_class_recall"].base_value is not None
