"""The lock (``requirements-lock.txt``): write it from an environment, check an environment
against it, or list how an environment differs from it. Standard library only, so it runs in
any of the project's environments before anything else is importable.

    python tests/lockcheck.py LOCK            exit 1 when an installed package's version differs
    python tests/lockcheck.py --diff LOCK     list the differences, exit 0 (make test-latest)
    python tests/lockcheck.py --write LOCK    freeze this environment into LOCK (make lock)

Not locked: the editable installs (auditft itself, the example plugin) and torch with its
CUDA companions, since the Makefile keeps a machine's own torch build (a CUDA machine's).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

UNLOCKED = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _editable(dist: metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    return bool(text) and bool(json.loads(text).get("dir_info", {}).get("editable"))


def installed() -> dict[str, str]:
    """Every installed distribution that the lock covers: normalised name -> version."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or UNLOCKED.match(normalise(name)) or _editable(dist):
            continue
        found[normalise(name)] = dist.version
    return found


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"{path}: line {number}: expected NAME==VERSION, got {line!r}")
        pins[normalise(name)] = version.strip()
    return pins


def differences(pins: dict[str, str], have: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    changed = [f"{n}: lock {pins[n]}, installed {have[n]}" for n in sorted(pins.keys() & have.keys())
               if pins[n] != have[n]]
    new = [f"{n} {have[n]} (not in the lock)" for n in sorted(have.keys() - pins.keys())]
    gone = [f"{n} {pins[n]} (locked, not installed)" for n in sorted(pins.keys() - have.keys())]
    return changed, new, gone


def write(path: Path) -> None:
    have = installed()
    header = [
        "# The exact versions `make test` passed with: every package auditft, its dev extras and",
        "# the model wheels pull in, transitive ones included (torch excepted: see the Makefile).",
        "# Used as pip constraints (-c) by make setup/demo/test/bench. Refresh: `make lock`,",
        "# then `make test`, then commit this file with whatever the tests needed.",
        f"# written {datetime.date.today().isoformat()} on Python {platform.python_version()} "
        f"({sys.platform}, {platform.machine()}); {len(have)} packages",
    ]
    path.write_text("\n".join(header + [f"{n}=={v}" for n, v in sorted(have.items())]) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--diff", action="store_true", help="list differences, exit 0")
    mode.add_argument("--write", action="store_true", help="freeze this environment into LOCK")
    args = parser.parse_args(argv)
    if args.write:
        write(args.lock)
        return 0
    changed, new, gone = differences(read_lock(args.lock), installed())
    if args.diff:
        print(f"against {args.lock}: {len(changed)} newer or different, {len(new)} new, {len(gone)} no longer used")
        for line in changed + new + gone:
            print(f"  {line}")
        return 0
    for line in new:  # something installed by hand: worth a word, not a failure
        print(f"lockcheck: note: {line}", file=sys.stderr)
    if changed:
        print(f"lockcheck: the environment does not match {args.lock}:", file=sys.stderr)
        for line in changed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
