"""A cached copy of ``auditft plugins``' table, so listing plugins and ``auditft --help`` need
not import every plugin (and pydantic, and the audits' modules) on each start.

The table is stored per *fingerprint* of everything that can change it:

* auditft's version, the interpreter, and the plugin environment variables
  (``AUDITFT_DISABLE_PLUGINS``, ``AUDITFT_LOAD_PLUGINS``, ``AUDITFT_STRICT_PLUGINS``);
* every installed entry point of the group ``auditft``: its name, target, distribution and
  version;
* the size and modification time of every ``.py`` file of auditft itself and of each entry
  point's top-level package (found with ``importlib.util.find_spec``, which imports nothing),
  so editing a plugin's source, editable installs included, makes a new table.

A miss, an unreadable file or ``AUDITFT_NO_PLUGIN_CACHE=1`` falls back to loading the plugins,
which is always correct; the cache only ever saves time. Only the standard library is imported
here: that is the point.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GROUP = "auditft"
ENV_KEYS = ("AUDITFT_DISABLE_PLUGINS", "AUDITFT_LOAD_PLUGINS", "AUDITFT_STRICT_PLUGINS")
#: variables under which the cache is not used (tracing must see the hooks run)
BYPASS = ("AUDITFT_NO_PLUGIN_CACHE", "AUDITFT_TRACE_PLUGINS")
FORMAT = 1


def cache_dir(env: Mapping[str, str]) -> Path:
    """Where auditft keeps its caches (``AUDITFT_CACHE``, as for converted models)."""
    return Path(env.get("AUDITFT_CACHE") or Path.home() / ".cache" / "auditft")


def enabled(env: Mapping[str, str]) -> bool:
    return not any(env.get(key, "") in ("1", "true", "yes") for key in BYPASS)


def _stamp(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every ``.py`` file under ``root``."""
    out = []
    if root.is_file():
        info = root.stat()
        return [(root.name, info.st_size, info.st_mtime_ns)]
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(directory) / name
                info = path.stat()
                out.append((str(path.relative_to(root)), info.st_size, info.st_mtime_ns))
    return out


def _source_root(module: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None


def fingerprint(env: Mapping[str, str]) -> str:
    import importlib.metadata

    from auditft.version import __version__

    points = []
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        dist = getattr(ep, "dist", None)
        root = _source_root(ep.module)
        points.append([ep.name, ep.value, getattr(dist, "name", None), getattr(dist, "version", None),
                       str(root), _stamp(root) if root is not None and root.exists() else None])
    payload = {"format": FORMAT, "auditft": __version__, "python": sys.version, "executable": sys.executable,
               "env": {key: env.get(key) for key in ENV_KEYS}, "entry_points": points,
               "core": _stamp(Path(__file__).resolve().parent)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _path(env: Mapping[str, str], key: str) -> Path:
    return cache_dir(env) / f"plugin-table-{key[:24]}.json"


def load(env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The cached description for this environment, or None (miss, disabled, unreadable)."""
    env = os.environ if env is None else env
    if not enabled(env):
        return None
    key = fingerprint(env)
    try:
        stored = json.loads(_path(env, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("fingerprint") != key or not isinstance(stored.get("table"), dict):
        return None
    table: dict[str, Any] = stored["table"]
    return table


def store(table: dict[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Keep ``table`` (``auditft.plugins.describe_plugins``' output) for the next start; a
    cache that cannot be written is no error."""
    env = os.environ if env is None else env
    if not enabled(env):
        return
    from auditft.fsutil import atomic_write_json

    key = fingerprint(env)
    try:
        _path(env, key).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(_path(env, key), {"fingerprint": key, "table": table})
    except OSError:
        pass


def provides_commands(table: dict[str, Any]) -> bool:
    """Whether some plugin in the table adds commands (then ``--help`` must load plugins)."""
    return any("auditft_register_commands" in plugin.get("hooks", []) for plugin in table.get("plugins", []))
