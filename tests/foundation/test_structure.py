"""The house's structure: layers import downward only, no import circles, short functions.

Layers (issue #19, "The house"): `torghut_site` is the ground floor; above it `trading`; above
that `orderfeed`, `whitepapers` and `autonomy`; above everything the operators' app `ops`. A
module may import its own app and the apps on the floors below it, never an app on its own floor
or above. No module may be part of an import circle. Every import counts, wherever it stands: at
the top of a module, inside a function, or under `if TYPE_CHECKING`. Migrations and tests are
not part of the house and are not read.

Imports are read from the syntax tree (`ast`), so an import named only in a string
(`importlib.import_module`, `include("app.urls")`, a Celery task sent by name) draws no arrow.
A relative import is resolved against its package, and `from pkg import name` imports the
module `pkg.name` when there is one (else the package `pkg`).

The `KNOWN_*` tables hold accepted exceptions, each with the reason and the work that removes
it; they are empty, and stay so: a violation that is not listed fails, and so does a listed one
that no longer exists.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

# The floor of each app. Apps on the same floor must not import each other either.
LAYERS: dict[str, int] = {
    "torghut_site": 0,
    "trading": 1,
    "orderfeed": 2,
    "whitepapers": 2,
    "autonomy": 2,
    "ops": 3,
}
EXCLUDED_DIRS = frozenset({"migrations", "tests", "__pycache__"})
# every function of the apps is under 80 lines; of the benchmarks and scripts, under 120
MAX_FUNCTION_LINES = 79
TOOL_DIRS = ("bench", "scripts")
MAX_TOOL_FUNCTION_LINES = 119
# settings are a package by concern, each module under 400 lines
SETTINGS_PACKAGE = "torghut_site/settings"
MAX_SETTINGS_MODULE_LINES = 399


# (importing module, imported module) -> what removes it
KNOWN_LAYER_VIOLATIONS: dict[tuple[str, str], str] = {}

# the modules of one circle (a strongly connected component) -> what removes it
KNOWN_CIRCLES: dict[frozenset[str], str] = {}

# "module:qualified.name" -> (its length today, which it must not exceed, and what removes it)
KNOWN_LONG_FUNCTIONS: dict[str, tuple[int, str]] = {}


@dataclass(frozen=True)
class ImportLine:
    source: str  # the importing module
    target: str  # the imported module of the house
    path: str  # the importing file, relative to the root
    lineno: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.text}"


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the house by dotted name; an app that does not exist (yet) is skipped."""
    modules: dict[str, Path] = {}
    for app in LAYERS:
        if not (root / app / "__init__.py").is_file():
            continue
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root)
            if EXCLUDED_DIRS.intersection(relative.parts[:-1]):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _known_prefix(name: str, modules: dict[str, Path]) -> str | None:
    """The longest dotted prefix of `name` that is a module of the house."""
    parts = name.split(".")
    while parts:
        if (candidate := ".".join(parts)) in modules:
            return candidate
        parts.pop()
    return None


def _from_base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module a `from ... import` statement imports from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _imports(module: str, path: Path, root: Path, modules: dict[str, Path]) -> Iterator[ImportLine]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, path, node)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            targets = [name if name in modules else base for name in submodules]
        else:
            continue
        text = " ".join(line.strip() for line in lines[node.lineno - 1 : node.end_lineno])
        for target in dict.fromkeys(targets):
            resolved = _known_prefix(target, modules)
            if resolved is not None and resolved != module:
                relative = path.relative_to(root).as_posix()
                yield ImportLine(module, resolved, relative, node.lineno, text)


def import_lines(root: Path) -> list[ImportLine]:
    """Every import of a module of the house by a module of the house."""
    modules = module_files(root)
    found: list[ImportLine] = []
    for module, path in modules.items():
        found.extend(_imports(module, path, root, modules))
    return found


def _app(module: str) -> str:
    return module.split(".", 1)[0]


def layer_violations(lines: list[ImportLine]) -> dict[tuple[str, str], list[ImportLine]]:
    """Imports of another app on the same floor or a higher one, by (importing, imported)."""
    found: dict[tuple[str, str], list[ImportLine]] = {}
    for line in lines:
        source_app, target_app = _app(line.source), _app(line.target)
        if source_app != target_app and LAYERS[target_app] >= LAYERS[source_app]:
            found.setdefault((line.source, line.target), []).append(line)
    return found


def import_circles(lines: list[ImportLine]) -> list[frozenset[str]]:
    """Tarjan's strongly connected components of the module graph that hold more than one
    module (a module's import of itself is dropped by `_imports`). Iterative, so a deep graph
    cannot reach the recursion limit."""
    graph: dict[str, list[str]] = {}
    for line in lines:
        graph.setdefault(line.source, []).append(line.target)
        graph.setdefault(line.target, [])
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[frozenset[str]] = []

    def visit(node: str) -> Iterator[str]:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return iter(sorted(set(graph[node])))

    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, visit(root))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component = {stack.pop()}
                    while node not in component:
                        component.add(stack.pop())
                    on_stack.difference_update(component)
                    if len(component) > 1:
                        circles.append(frozenset(component))
            elif child not in index:
                work.append((child, visit(child)))
            elif child in on_stack:
                lowlink[node] = min(lowlink[node], index[child])
    return circles


def long_functions(root: Path) -> dict[str, int]:
    """Every function or method of the apps longer than MAX_FUNCTION_LINES, from its `def` line to
    its last line (decorators not counted), by `module:qualified.name`, with its length."""
    found: dict[str, int] = {}
    for module, path in module_files(root).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.update(_long_functions_in(module, tree, "", MAX_FUNCTION_LINES))
    return found


def long_tool_functions(root: Path) -> dict[str, int]:
    """The same over the benchmarks and scripts, against MAX_TOOL_FUNCTION_LINES."""
    found: dict[str, int] = {}
    for directory in TOOL_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            module = path.relative_to(root).with_suffix("").as_posix().replace("/", ".")
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found.update(_long_functions_in(module, tree, "", MAX_TOOL_FUNCTION_LINES))
    return found


def _long_functions_in(module: str, node: ast.AST, prefix: str, limit: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef) and child.end_lineno is not None:
                length = child.end_lineno - child.lineno + 1
                if length > limit:
                    found[f"{module}:{name}"] = length
            found.update(_long_functions_in(module, child, f"{name}.", limit))
        else:
            found.update(_long_functions_in(module, child, prefix, limit))
    return found


def _circle_report(circle: frozenset[str], lines: list[ImportLine]) -> str:
    inside = sorted(
        (line for line in lines if line.source in circle and line.target in circle),
        key=lambda line: (line.source, line.target, line.lineno),
    )
    body = "\n".join(f"    {line.source} -> {line.target}  ({line})" for line in inside)
    return f"  circle {sorted(circle)}:\n{body}"


# --- the house as it stands ---


def test_no_import_runs_up_or_across_a_floor() -> None:
    found = layer_violations(import_lines(ROOT))
    new = {pair: lines for pair, lines in found.items() if pair not in KNOWN_LAYER_VIOLATIONS}
    gone = sorted(pair for pair in KNOWN_LAYER_VIOLATIONS if pair not in found)
    problems = [
        f"  {source} (floor {LAYERS[_app(source)]}) imports {target} "
        f"(floor {LAYERS[_app(target)]}):\n" + "\n".join(f"    {line}" for line in lines)
        for (source, target), lines in sorted(new.items())
    ]
    problems += [f"  {pair!r} is fixed: delete it from KNOWN_LAYER_VIOLATIONS" for pair in gone]
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_import_circle() -> None:
    lines = import_lines(ROOT)
    found = set(import_circles(lines))
    new = sorted((circle for circle in found if circle not in KNOWN_CIRCLES), key=sorted)
    gone = sorted((circle for circle in KNOWN_CIRCLES if circle not in found), key=sorted)
    problems = [_circle_report(circle, lines) for circle in new]
    problems += [
        f"  circle {sorted(circle)} no longer exists as listed: delete or shrink its entry "
        "in KNOWN_CIRCLES"
        for circle in gone
    ]
    assert not problems, "import circles:\n" + "\n".join(problems)


def test_every_function_is_under_80_lines() -> None:
    found = long_functions(ROOT)
    problems = [
        f"  {name}: {length} lines"
        for name, length in sorted(found.items())
        if name not in KNOWN_LONG_FUNCTIONS or length > KNOWN_LONG_FUNCTIONS[name][0]
    ]
    problems += [
        f"  {name} is now under {MAX_FUNCTION_LINES + 1} lines (or gone): delete it from "
        "KNOWN_LONG_FUNCTIONS"
        for name in sorted(KNOWN_LONG_FUNCTIONS)
        if name not in found
    ]
    assert not problems, (
        f"functions over {MAX_FUNCTION_LINES} lines (or longer than listed):\n"
        + "\n".join(problems)
    )


def test_every_benchmark_and_script_function_is_under_120_lines() -> None:
    found = long_tool_functions(ROOT)
    assert found == {}, f"functions of {TOOL_DIRS} over {MAX_TOOL_FUNCTION_LINES} lines: {found}"


def test_every_settings_module_is_under_400_lines() -> None:
    sizes = {
        path.name: len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((ROOT / SETTINGS_PACKAGE).glob("*.py"))
    }
    assert len(sizes) > 10  # the package by concern, not one module
    over = {name: lines for name, lines in sizes.items() if lines > MAX_SETTINGS_MODULE_LINES}
    assert over == {}, f"settings modules over {MAX_SETTINGS_MODULE_LINES} lines: {over}"


def test_known_tables_name_only_apps_of_the_house() -> None:
    named = {module for pair in KNOWN_LAYER_VIOLATIONS for module in pair}
    named |= {module for circle in KNOWN_CIRCLES for module in circle}
    named |= {name.split(":", 1)[0] for name in KNOWN_LONG_FUNCTIONS}
    assert {_app(module) for module in named} <= set(LAYERS)


# --- the checker itself, on a small house written for it ---


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_checker_finds_hidden_upward_imports_and_circles(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "torghut_site/__init__.py": "",
            "torghut_site/ground.py": """\
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from trading.models import Order


                def late() -> None:
                    import whitepapers.tasks
            """,
            "trading/__init__.py": "",
            "trading/models.py": "from . import services\n",
            "trading/services/__init__.py": "from .cycle import run\n",
            "trading/services/cycle.py": "from .. import models\nrun = 1\n",
            "trading/tests/test_x.py": "import autonomy\n",
            "trading/migrations/0001_initial.py": "import orderfeed\n",
            "whitepapers/__init__.py": "",
            "whitepapers/tasks.py": "from orderfeed import normalize\n",
            "orderfeed/__init__.py": "",
            "orderfeed/normalize.py": "import torghut_site.ground\n",
        },
    )
    lines = import_lines(tmp_path)
    violations = layer_violations(lines)
    assert sorted(violations) == [
        ("torghut_site.ground", "trading.models"),
        ("torghut_site.ground", "whitepapers.tasks"),
        ("whitepapers.tasks", "orderfeed.normalize"),
    ]
    assert [str(line) for line in violations[("torghut_site.ground", "trading.models")]] == [
        "torghut_site/ground.py:4: from trading.models import Order"
    ]
    assert set(import_circles(lines)) == {
        frozenset({"trading.models", "trading.services", "trading.services.cycle"}),
        frozenset({"torghut_site.ground", "whitepapers.tasks", "orderfeed.normalize"}),
    }


def test_checker_measures_functions_from_def_to_last_line(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    _write(
        tmp_path,
        {
            "trading/__init__.py": "",
            "trading/long.py": (
                "class Book:\n"
                "    def at_limit(self) -> None:\n"
                f"{body}\n"
                "\n"
                "    async def over(self) -> None:\n"
                f"{body}\n"
                "        x = 0\n"
            ),
        },
    )
    assert long_functions(tmp_path) == {"trading.long:Book.over": MAX_FUNCTION_LINES + 1}


def test_checker_measures_benchmark_and_script_functions_against_their_own_limit(
    tmp_path: Path,
) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_TOOL_FUNCTION_LINES - 1))
    _write(
        tmp_path,
        {
            "bench/fits.py": f"def main() -> None:\n{body}\n",
            "scripts/tools/over.py": f"def main() -> None:\n{body}\n    x = 0\n",
        },
    )
    assert long_tool_functions(tmp_path) == {"scripts.tools.over:main": MAX_TOOL_FUNCTION_LINES + 1}
