"""The shape of the house, held by tests (docs/architecture.md explains the rules).

Figures come from ``tests/archmetrics.py`` (ast over ``auditft/``; imports inside functions
count, ``TYPE_CHECKING`` ones are checked separately). Each test fails with the offending
modules named, so a regression says where to look.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import archmetrics
import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_NONBLANK = 450
MAX_ANY_SHARE = 0.10


@pytest.fixture(scope="module")
def modules() -> dict[str, archmetrics.Module]:
    return archmetrics.scan()


def test_no_import_cycle_even_counting_type_checking_imports(modules):
    assert archmetrics.cycles(modules, with_typing=False) == []
    assert archmetrics.cycles(modules, with_typing=True) == []


def test_no_module_over_the_size_limit(modules):
    big = {name: m.nonblank for name, m in modules.items() if m.nonblank > MAX_NONBLANK}
    assert big == {}, f"modules over {MAX_NONBLANK} non-blank lines: {big}"


def test_few_parameters_typed_any(modules):
    figures = archmetrics.figures(modules)
    assert figures["any_share"] < MAX_ANY_SHARE, (
        f"{figures['any_params']}/{figures['params']} parameters typed Any")


#: the floors of docs/architecture.md, bottom up: a module imports only its own floor and below
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("auditft.errors", "auditft.version", "auditft.fsutil", "auditft.records", "auditft.progress",
                    "auditft.optional_imports", "auditft.textmetrics", "auditft.stats", "auditft.manifest",
                    "auditft.adapter_meta", "auditft.pii", "auditft.distributed", "auditft.guards")),
    ("inputs", ("auditft.registry", "auditft.suite", "auditft.tuner_list", "auditft.data", "auditft.models")),
    ("contract", ("auditft", "auditft.jobs", "auditft.protocols", "auditft.context", "auditft.hookspecs")),
    ("plugin host", ("auditft.plugins", "auditft.plugin_table")),
    ("engine", ("auditft.inference", "auditft.training", "auditft.batching", "auditft.tuners", "auditft.chat", "auditft.seeding",
                "auditft.degeneracy", "auditft.gate", "auditft.power", "auditft.retraining", "auditft.run_adapters",
                "auditft.hfmetrics")),
    ("report", ("auditft.report",)),
    ("sign-off", ("auditft.signoff",)),
    ("orchestration", ("auditft.plan", "auditft.opening", "auditft.resume", "auditft.isolation", "auditft.run",
                       "auditft.compare", "auditft.recipes", "auditft.exports")),
    ("plugins and kit", ("auditft.default_plugins", "auditft.conformance", "auditft.testing", "auditft.fixtures")),
    ("interfaces", ("auditft.cli", "auditft.serve", "auditft.__main__")),
]


def floor_of(name: str) -> int:
    best = (-1, -1)  # (length of the matching prefix, floor)
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), number)
    assert best[1] >= 0, f"{name}: on no floor of docs/architecture.md (add it to FLOORS and the doc)"
    return best[1]


def test_every_import_goes_down_the_floors(modules):
    """Counting imports inside functions and TYPE_CHECKING ones: nothing imports upwards."""
    upward = [f"{name} ({FLOORS[floor_of(name)][0]}) -> {target} ({FLOORS[floor_of(target)][0]})"
              for name, m in sorted(modules.items())
              for target in sorted(m.runtime_imports | m.typing_imports) if floor_of(target) > floor_of(name)]
    assert upward == []


def test_plugins_never_reach_sign_off_or_the_orchestration(modules):
    """No hook can reach a decision: built-in plugins import neither the sign-off wing nor the
    run's orchestration (they get what they need through their job)."""
    banned = ("auditft.signoff", "auditft.run", "auditft.plan", "auditft.opening", "auditft.resume",
              "auditft.isolation", "auditft.cli", "auditft.serve")
    reach = {name: sorted(t for t in m.runtime_imports | m.typing_imports
                          if t.startswith(banned) and (t in banned or t.startswith(tuple(b + "." for b in banned))))
             for name, m in modules.items() if name.startswith("auditft.default_plugins")}
    assert {k: v for k, v in reach.items() if v} == {}


def test_one_card_number_checker_in_the_tree():
    """Two detectors once disagreed on what a card number is; the Luhn check lives once."""
    found = []
    for path in list((ROOT / "auditft").rglob("*.py")) + list((ROOT / "plugins").rglob("*.py")):
        if "tests" in path.relative_to(ROOT).parts:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"\s*def \w*luhn\w*\(", line, re.I):
                found.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert len(found) == 1, found


def test_the_type_checker_passes():
    """mypy over auditft/ with the configuration in pyproject.toml ([tool.mypy])."""
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
