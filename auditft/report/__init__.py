"""The report: ``report.json`` (the evidence), ``report.html`` (what reviewers read, rendered
from the JSON alone) and ``model_card.md``.

Every template goes through one Jinja2 environment with autoescape on, so dataset and model
text can never become markup; plugin sections use ``render_fragment`` for the same reason.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from markupsafe import Markup


def fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:.{digits}f}"
    return str(value)


def signed(value: object, digits: int = 3) -> str:
    if not isinstance(value, (int, float)) or value is None:
        return "–"
    return f"{value:+.{digits}f}"


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("auditft", "report/templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(fmt=fmt, signed=signed)
    return env


def render_fragment(source: str, **context: object) -> Markup:
    """Render a plugin's section template with autoescape on; the result is safe markup."""
    return Markup(environment().from_string(source).render(**context))


def audit_result(report: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The report-section prologue every audit shares: ``kind``'s result in ``report``, or
    None when the audit did not run, crashed or left no evidence (then it adds no section)."""
    result = report.get("audits", {}).get(kind)
    if not result or result.get("error") or not result.get("evidence"):
        return None
    return result


def render_template(anchor: str, name: str, **context: object) -> Markup:
    """Render the ``.j2`` file ``name`` that lives beside the module or package ``anchor``
    (pass ``__name__``), through the same autoescaping environment as ``render_fragment``.

    A plugin keeps its section's HTML in a template file next to its code instead of in a
    Python string; the file must ship as package data."""
    return Markup(_template(anchor, name).render(**context))


@lru_cache(maxsize=64)
def _template(anchor: str, name: str) -> Any:
    import importlib
    from pathlib import Path

    module = importlib.import_module(anchor)
    folder = Path(module.__file__ or "").parent
    return environment().from_string((folder / name).read_text(encoding="utf-8"))
