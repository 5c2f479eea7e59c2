"""Progress bars (rich) that stay quiet when output is not a terminal or when disabled.

``AUDITFT_PROGRESS=0`` turns them off (tests, CI logs); ``=1`` forces them on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def enabled() -> bool:
    if os.environ.get("RANK", "0") not in ("", "0"):
        return False  # data-parallel runs: only the main process draws progress
    setting = os.environ.get("AUDITFT_PROGRESS")
    if setting is not None:
        return setting not in ("0", "false", "no")
    return sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a rich progress bar on stderr when enabled."""
    if not enabled() or total <= 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def quiet_libraries() -> None:
    """Silence the libraries' own bars and chatter; our bars (and the Trainer's) remain."""
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    # deprecation notices addressed to library authors, not to people running a suite
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|accelerate)\.")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(torch|transformers|peft)\.")

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
