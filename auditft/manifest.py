"""The run manifest: sha256 of every artefact and input, versions, seeds, hardware; and the
hashing and sizing of files every other module uses (one implementation).

``report.json`` embeds the manifest of inputs and the adapter; ``manifest.json`` adds the
hashes of the report files themselves (they cannot contain their own hash).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_size(root: Path) -> int:
    """Bytes of every file under ``root`` (an adapter's size on disk)."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())

LIBRARIES = ("auditft", "torch", "transformers", "peft", "accelerate", "datasets", "safetensors",
             "scikit-learn", "fairlearn", "numpy", "pydantic", "pluggy", "jinja2")


def hash_tree(root: Path, *, exclude: tuple[str, ...] = (), hidden: bool = False) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by POSIX path relative to ``root``.

    Hidden files are skipped unless ``hidden``; symlinks are never followed (``symlinks``
    lists them so integrity checks can refuse them)."""
    root = Path(root)
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in exclude or (not hidden and any(part.startswith(".") for part in rel.split("/"))):
            continue
        out[rel] = sha256_file(path)
    return out


def symlinks(root: Path) -> list[str]:
    """Paths under ``root`` that are symlinks (files or directories), relative to ``root``."""
    found = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(directory) / name
            if path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    from auditft import distributed

    # a data-parallel run says so: its figures come from this many processes
    info["processes"] = distributed.world_size()
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info
