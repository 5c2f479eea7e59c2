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


def fmt(value: Any, digits: int = 3) -> str:
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


def signed(value: Any, digits: int = 3) -> str:
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


def render_fragment(source: str, **context: Any) -> Markup:
    """Render a plugin's section template with autoescape on; the result is safe markup."""
    return Markup(environment().from_string(source).render(**context))
