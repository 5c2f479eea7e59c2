"""Shared fixtures: a tiny random model built once per session, toy data, isolated plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("AUDITFT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from auditft.testing import isolated_plugin_manager, tiny_classifier, toy_classification_data, write_suite  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_classifier(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def pm():
    return isolated_plugin_manager()


@pytest.fixture
def toy(tmp_path: Path, tiny_model_dir: Path):
    """A directory with toy data and a valid suite pointing at the tiny model."""
    toy_classification_data(tmp_path)
    suite = write_suite(tmp_path / "suite.yaml", model_dir=tiny_model_dir)
    return tmp_path, suite
