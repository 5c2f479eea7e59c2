"""Every suite shipped under ``suites/`` is valid: its plugins, options, data rows and model."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.cli import cli

SUITES = sorted((Path(__file__).resolve().parents[1] / "suites").rglob("*.yaml"))


def test_there_is_a_suite_per_tuner_kind():
    from auditft.testing import isolated_plugin_manager

    import yaml

    kinds = {yaml.safe_load(path.read_text())["tuner"]["kind"] for path in SUITES}
    assert kinds == {entry.kind for entry in isolated_plugin_manager().tuners}


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suite_is_valid(path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert ": valid (" in result.output
