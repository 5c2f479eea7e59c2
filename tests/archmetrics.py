"""Measure the shape of the `auditft` package: import cycles, module sizes, `Any` parameters.

Standard library only (ast), so it runs before anything is installed:

    python tests/archmetrics.py            # figures as text
    python tests/archmetrics.py --json     # the same as JSON

Imports are counted wherever they appear, inside functions too, because a function-level
import still couples the two modules; imports under ``if TYPE_CHECKING:`` are reported apart
(they couple the types, not the running code). ``tests/test_architecture.py`` holds the limits.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "auditft"


@dataclass
class Module:
    name: str
    path: Path
    nonblank: int
    runtime_imports: set[str] = field(default_factory=set)
    typing_imports: set[str] = field(default_factory=set)
    params: int = 0
    any_params: int = 0


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _annotation_is_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    text = ast.unparse(annotation).strip("'\"")
    return text in {"Any", "typing.Any", "t.Any"}


def scan(package: Path = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(package.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = module_name(path)
        nonblank = sum(1 for line in source.splitlines() if line.strip())
        modules[name] = Module(name, path, nonblank)
    known = set(modules)
    for name, module in modules.items():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        is_package = module.path.name == "__init__.py"
        typing_nodes: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for inner in node.body:
                    for sub in ast.walk(inner):
                        typing_nodes.add(id(sub))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # `from auditft import gate` imports the module auditft.gate; a name that is
                # not a module (`from auditft import hookimpl`) is an import of the package
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                every = args.posonlyargs + args.args + args.kwonlyargs
                every += [a for a in (args.vararg, args.kwarg) if a is not None]
                for arg in every:
                    if arg.arg in {"self", "cls"}:
                        continue
                    module.params += 1
                    module.any_params += _annotation_is_any(arg.annotation)
                continue
            for target in targets:
                # `from auditft import x` names a module when x is one, else the package
                hit = target if target in known else None
                while hit is None and "." in target:  # `import auditft.report.html as h`
                    target = target.rsplit(".", 1)[0]
                    hit = target if target in known else None
                if hit is None or hit == name:
                    continue
                bucket = module.typing_imports if id(node) in typing_nodes else module.runtime_imports
                bucket.add(hit)
    return modules


def cycles(modules: dict[str, Module], *, with_typing: bool) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {
        name: sorted(m.runtime_imports | (m.typing_imports if with_typing else set()))
        for name, m in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def figures(modules: dict[str, Module] | None = None) -> dict:
    modules = modules or scan()
    params = sum(m.params for m in modules.values())
    any_params = sum(m.any_params for m in modules.values())
    sizes = sorted(((m.nonblank, n) for n, m in modules.items()), reverse=True)
    return {
        "modules": len(modules),
        "runtime_cycles": cycles(modules, with_typing=False),
        "typing_cycles": cycles(modules, with_typing=True),
        "largest": [{"module": n, "nonblank": s} for s, n in sizes[:10]],
        "over_450": [n for s, n in sizes if s > 450],
        "params": params,
        "any_params": any_params,
        "any_share": round(any_params / params, 4) if params else 0.0,
    }


def main(argv: list[str]) -> int:
    result = figures()
    if "--json" in argv:
        print(json.dumps(result, indent=2))
        return 0
    print(f"modules: {result['modules']}")
    print(f"runtime import cycles: {len(result['runtime_cycles'])}")
    for c in result["runtime_cycles"]:
        print("  " + " <-> ".join(c))
    print(f"cycles counting TYPE_CHECKING imports: {len(result['typing_cycles'])}")
    for c in result["typing_cycles"]:
        print(f"  ({len(c)} modules) " + ", ".join(c))
    print("largest modules (non-blank lines):")
    for row in result["largest"]:
        print(f"  {row['nonblank']:4d}  {row['module']}")
    print(
        f"parameters typed Any: {result['any_params']}/{result['params']} "
        f"= {100 * result['any_share']:.1f}%"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
