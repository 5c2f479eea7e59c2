"""bitsandbytes is imported only on the code path that quantises (``qlora``).

peft imports ``bitsandbytes`` as soon as peft itself is imported (``peft.helpers``) and again
whenever it builds LoRA or IA3 layers, quantised or not; transformers' Trainer imports peft.
Executing ``bitsandbytes`` costs most of a second and, on CPUs with AVX512-BF16, logs
``Failed to load CPU gemm_4bit_forward from kernels-community`` (it tries to fetch a kernel
from a hub). So every ``auditft run`` paid for 4-bit support and printed that line, even a
plain ``lora`` run.

``block()`` (called by the ``auditft`` command, not by ``import auditft``, so a library user's
process is left alone) puts ``None`` in ``sys.modules["bitsandbytes"]``: Python's own way to
say "not installed", which peft's and transformers' availability checks read as False.
``bitsandbytes()`` lifts the block for the rest of the process, clears those libraries'
cached availability answers and hands the module to the two modules that captured its
absence at import, then returns it. A lifted block is never put back.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from types import ModuleType

NAME = "bitsandbytes"

#: availability checks that libraries cache (``functools.lru_cache``) per process
_CACHED_CHECKS = (
    ("peft.import_utils", "is_bnb_available"),
    ("peft.import_utils", "is_bnb_4bit_available"),
    ("transformers.utils.import_utils", "is_bitsandbytes_available"),
)
#: modules that bind ``bnb`` at import time when bitsandbytes is available
_MODULE_GLOBALS = ("peft.helpers", "transformers.integrations.bitsandbytes")


def block() -> bool:
    """Hide bitsandbytes from this process until ``bitsandbytes()`` is called. Returns
    whether it is hidden now (not when it was already imported or is not installed)."""
    if NAME in sys.modules:
        return sys.modules[NAME] is None
    if importlib.util.find_spec(NAME) is None:
        return False
    sys.modules[NAME] = None  # type: ignore[assignment]
    return True


def is_blocked() -> bool:
    return NAME in sys.modules and sys.modules[NAME] is None


def bitsandbytes() -> ModuleType:
    """The bitsandbytes module, imported now if need be (the 4-bit path calls this)."""
    was_blocked = is_blocked()
    if was_blocked:
        del sys.modules[NAME]
    # The missing hub kernel is an optional speed-up that cannot be fetched offline anyway;
    # bitsandbytes falls back to its own CPU kernel, which is what we test.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    module = importlib.import_module(NAME)
    if was_blocked:
        for module_name, function in _CACHED_CHECKS:
            owner = sys.modules.get(module_name)
            check = getattr(owner, function, None)
            if check is not None and hasattr(check, "cache_clear"):
                check.cache_clear()
        for module_name in _MODULE_GLOBALS:
            owner = sys.modules.get(module_name)
            if owner is not None and getattr(owner, "bnb", None) is None:
                owner.bnb = module  # type: ignore[attr-defined]
    return module
