"""The layout shows the flow: imports point down it, modules stay small, each says what it owns.

Read with `ast`, nothing imported: docs/architecture.md, "What tests/test_layout.py checks".
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lsst_alert_pipeline"

# Modules at the package root that every stage may import: settings, error types, exit codes,
# and the one home of antares-client's private names (antares_adapter.py).
SHARED = {"config", "config_file", "errors", "exitcodes", "masking", "antares_adapter",
          "broker_presets", "__init__"}

# The flow, top to bottom: cli -> pipeline/ops/look -> sinks -> filter -> decode -> sources.
BELOW_SINKS = {"sinks", "filter", "decode", "sources"}
APPLICATION = {"pipeline", "ops", "look", *BELOW_SINKS, "simulate", "testing"}

# What each part may import, besides SHARED and itself. A part is a folder, a root module, or
# (for relay) one module that is a small application of its own.
ALLOWED: dict[str, set[str]] = {
    "cli": APPLICATION | {"demo", "filter/relay", "notify"},
    "demo": APPLICATION | {"filter/relay"},
    "pipeline": set(BELOW_SINKS),
    "ops": {"pipeline", *BELOW_SINKS},  # status, cleanup and merge work on the pipeline's output
    "look": set(BELOW_SINKS),
    # notify reads what a run left (ledger, archive, report) and is handed to consume: above them
    "notify": {"pipeline", "ops", "look", *BELOW_SINKS},
    "sinks": {"filter", "decode", "sources"},
    "filter": {"decode", "sources"},
    # relay runs its own source -> filter -> Kafka topic loop, so it sits beside cli and demo.
    "filter/relay": {"sinks", "filter", "decode", "sources", "simulate", "testing"},
    "decode": {"sources"},
    "sources": set(),
    "config": set(),
    "config_file": set(),
    "broker_presets": set(),
    "masking": set(),
    "errors": set(),
    "exitcodes": set(),
    "antares_adapter": set(),
    "__init__": set(),
    # Side packages: the simulator and the test instrumentation use the library below cli.
    "simulate": {"pipeline", *BELOW_SINKS},
    "testing": {"pipeline", *BELOW_SINKS, "simulate"},
}

# Imports against the direction that the tree has today, each to be removed by moving code.
# Key: (importing module, imported part). Keep this list short and say why each is here.
DIRECTION_ALLOWANCE: dict[tuple[str, str], str] = {
    ("config.py", "sources"): "parse_reset validates --reset-offsets; its check belongs in config",
}

# Modules allowed past MAX_LINES, each with the reason.
MAX_LINES = 450
SIZE_ALLOWANCE: dict[str, str] = {}

# Modules allowed without a docstring, each with the reason.
DOCSTRING_ALLOWANCE: dict[str, str] = {}

# The filter file ANTARES loads on its own: no import of this package, nothing but these.
FILTER_FILE = "filter/antares_extendedness_filter.py"
FILTER_MAY_IMPORT = {"antares_devkit", "numpy"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def name_of(path: Path) -> str:
    """The module's path from the package folder, e.g. pipeline/run.py."""
    return path.relative_to(PACKAGE).as_posix()


def part_of(name: str) -> str:
    """The part of the flow a module belongs to: its folder, or its stem at the package root."""
    if name == "filter/relay.py":
        return "filter/relay"
    first = name.split("/")[0]
    return first.removesuffix(".py")


def imported_parts(path: Path) -> list[tuple[int, str, str]]:
    """(line, imported module, part) for every import of this package, lazy ones included."""
    package = ["lsst_alert_pipeline", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                if node.module:
                    targets.append([*base, *node.module.split(".")])
                else:
                    targets.extend([*base, alias.name] for alias in node.names)
            elif node.module and node.module.split(".")[0] == "lsst_alert_pipeline":
                targets.append(node.module.split("."))
        elif isinstance(node, ast.Import):
            targets.extend(alias.name.split(".") for alias in node.names
                           if alias.name.split(".")[0] == "lsst_alert_pipeline")
        for target in targets:
            inner = target[1:]
            if not inner:
                continue
            part = inner[0]
            if part == "filter" and inner[1:2] == ["relay"]:
                part = "filter/relay"
            elif not ((PACKAGE / part).is_dir() or (PACKAGE / f"{part}.py").exists()):
                part = "__init__"  # a name the package root defines, e.g. __version__
            found.append((node.lineno, ".".join(target), part))
    return found


def test_every_import_points_down_the_flow() -> None:
    wrong = []
    for path in modules():
        name = name_of(path)
        importer = part_of(name)
        allowed = ALLOWED[importer] | SHARED | {importer}
        if importer == "filter/relay":
            allowed.add("filter")
        for line, module, part in imported_parts(path):
            if part in allowed or (name, part) in DIRECTION_ALLOWANCE:
                continue
            wrong.append(f"{name}:{line} imports {module} ({importer} may import only "
                         f"{', '.join(sorted(ALLOWED[importer])) or 'config, errors, exitcodes'})")
    assert not wrong, "imports against the flow (docs/architecture.md):\n" + "\n".join(wrong)


def test_every_part_of_the_package_has_a_row_in_the_table() -> None:
    unknown = sorted({part_of(name_of(path)) for path in modules()} - ALLOWED.keys())
    assert not unknown, f"add these to ALLOWED in tests/test_layout.py: {unknown}"


def test_the_allowances_are_still_needed() -> None:
    stale = [f"{name} -> {part}" for name, part in DIRECTION_ALLOWANCE
             if part not in {found for _, _, found in imported_parts(PACKAGE / name)}]
    assert not stale, f"remove from DIRECTION_ALLOWANCE, no longer imported: {stale}"


def test_no_module_exceeds_the_line_limit() -> None:
    long = [f"{name_of(path)}: {lines} lines" for path in modules()
            if (lines := len(path.read_text().splitlines())) > MAX_LINES
            and name_of(path) not in SIZE_ALLOWANCE]
    assert not long, f"modules over {MAX_LINES} lines (split them by what they own): {long}"


def test_every_module_says_what_it_owns() -> None:
    missing = [name_of(path) for path in modules()
               if not ast.get_docstring(ast.parse(path.read_text()))
               and name_of(path) not in DOCSTRING_ALLOWANCE]
    assert not missing, f"modules without a docstring: {missing}"


def test_the_filter_file_imports_only_the_devkit_numpy_and_the_standard_library() -> None:
    path = PACKAGE / FILTER_FILE
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name.startswith(".") or not (top in FILTER_MAY_IMPORT
                                            or top in sys.stdlib_module_names):
                wrong.append(f"{FILTER_FILE}:{node.lineno} imports {name}")
    assert not wrong, "ANTARES loads the filter file alone:\n" + "\n".join(wrong)


def test_the_import_reader_sees_relative_and_lazy_imports() -> None:
    parts = {part for _, _, part in imported_parts(PACKAGE / "config.py")}
    assert {"errors", "sources"} <= parts  # `from .errors`, and a lazy `from .sources`
    parts = {part for _, _, part in imported_parts(PACKAGE / "pipeline" / "run.py")}
    assert {"exitcodes", "decode", "sinks", "sources", "pipeline"} <= parts


def module_imports(path: Path) -> set[str]:
    """The package's modules this one imports when it loads (type-checking imports included,
    imports inside functions not): names like 'pipeline/run.py'."""
    tree = ast.parse(path.read_text())
    package = path.parent.relative_to(PACKAGE).parts
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                base = list(package[:len(package) - node.level + 1])
                targets = [[*base, *(node.module or "").split(".")]] if node.module else [
                    [*base, alias.name] for alias in node.names]
                for parts in targets:
                    parts = [p for p in parts if p]
                    for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"),
                                      PACKAGE.joinpath(*parts, "__init__.py")):
                        if candidate.is_file():
                            found.add(name_of(candidate))
                            break
    visit(tree.body)
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = {name_of(path): module_imports(path) for path in modules()}
    circles: list[str] = []
    done: set[str] = set()

    def walk(module: str, trail: list[str]) -> None:
        if module in trail:
            circles.append(" -> ".join([*trail[trail.index(module):], module]))
            return
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            if imported.endswith("__init__.py") and module.startswith(imported[:-11]):
                continue  # a module loads its own package first: not a circle of code
            walk(imported, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        walk(module, [])
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))
