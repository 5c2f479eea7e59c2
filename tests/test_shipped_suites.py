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

    raws = [yaml.safe_load(path.read_text()) for path in SUITES]
    kinds = {raw["tuner"]["kind"] for raw in raws if "tuner" in raw}
    assert kinds == {entry.kind for entry in isolated_plugin_manager().tuners}


def test_the_recipe_comparison_compares_every_trained_tuner():
    """suites/recipes.yaml is the one several-tuner suite; it names every tuner that trains."""
    from auditft.testing import isolated_plugin_manager

    import yaml

    several = [path for path in SUITES if "tuners" in yaml.safe_load(path.read_text())]
    assert [path.name for path in several] == ["recipes.yaml"]
    kinds = {entry["kind"] for entry in yaml.safe_load(several[0].read_text())["tuners"]}
    trained = {entry.kind for entry in isolated_plugin_manager().tuners} - {"prompt"}
    assert kinds == trained


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suite_is_valid(path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert ": valid (" in result.output
