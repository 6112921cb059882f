"""Which filter files the fast path understands: the shipped file, with other literal values.

A user's edited filter file keeps the fast path (filter/fast.py) only when it differs from the
shipped one in the literal values of TUNABLE constants, comments and docstrings; anything else
(a new rule, a replaced function) runs through the DevKit, said once (docs/filter.md).
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from pathlib import Path

from antares_devkit.models import BaseFilter

from .devkit_run import BUNDLED_FILTER

# Top-level constants of the filter file a user may set to any literal: the specification's
# thresholds and switch, and what only names things (the tag, the Slack channel).
TUNABLE = frozenset({
    "EXTENDEDNESS_MEDIAN_MIN",
    "EXTENDEDNESS_MEDIAN_MAX",
    "EXTENDEDNESS_MIN_THRESHOLD",
    "EXTENDEDNESS_MAX_THRESHOLD",
    "REQUIRE_SSSOURCE",
    "OUTPUT_TAG",
    "SLACK_CHANNEL",
})

def _shape(source: str) -> list[tuple[str, ast.stmt]]:
    """The file's top-level statements with their AST dumps, docstrings dropped and the TUNABLE
    constants' literal values blanked; a statement the fast path cannot read stays whole."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    shapes = []
    for statement in tree.body:
        dumped = statement
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and statement.targets[0].id in TUNABLE and _literal(statement.value)):
            dumped = ast.Assign(targets=statement.targets, value=ast.Constant(value=None))
        shapes.append((ast.dump(dumped), statement))
    return shapes


def _literal(node: ast.expr) -> bool:
    """A number, bool or text written out (a sign allowed), nothing computed."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float | str)


@functools.cache
def _shipped_shape() -> tuple[str, ...]:
    return tuple(dumped for dumped, _ in _shape(BUNDLED_FILTER.read_text()))


@functools.cache
def _shipped_functions() -> tuple[str, ...]:
    tree = ast.parse(BUNDLED_FILTER.read_text())
    return tuple(node.name for node in tree.body if isinstance(node, ast.FunctionDef))


@functools.lru_cache(maxsize=16)
def _file_difference(source: str) -> str | None:
    """Where a filter file first differs from the shipped one beyond TUNABLE; None if nowhere."""
    try:
        shapes = _shape(source)
    except SyntaxError as exc:
        return f"it does not parse ({exc})"
    shipped = _shipped_shape()
    for (mine, statement), theirs in zip(shapes, shipped, strict=False):
        if mine != theirs:
            return f"line {statement.lineno} ({_name_of(statement)}) differs"
    if len(shapes) != len(shipped):
        return f"it has {len(shapes)} top-level statements, the shipped one {len(shipped)}"
    return None


def _name_of(statement: ast.stmt) -> str:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return f"{type(statement).__name__.removesuffix('Def').lower()} {statement.name}"
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return ", ".join(ast.unparse(target) for target in targets)
    return type(statement).__name__.lower()


def fallback_reason(filter_class: type[BaseFilter]) -> str | None:
    """Why the fast path cannot stand in for the DevKit with this filter; None when it can.

    Conservative: the class must be the one defined by a file that is the shipped filter up to
    the literal values of TUNABLE constants (comments and docstrings aside), unpatched."""
    module = sys.modules.get(filter_class.__module__)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return f"{filter_class.__name__} does not come from a filter file"
    try:
        source = Path(path).read_text()
    except OSError as exc:
        return f"cannot read {path}: {exc}"
    difference = _file_difference(source)
    if difference is not None:
        return f"{path} is not the shipped filter with other constants: {difference}"
    if getattr(module, filter_class.__name__, None) is not filter_class:
        return f"{filter_class.__name__} is not the class its file defines"
    # Code replaced at run time (a monkeypatched function or method) is code the AST did not see.
    functions = [(name, getattr(module, name, None)) for name in _shipped_functions()]
    functions.append(("_run", vars(filter_class).get("_run")))
    for name, value in functions:
        if not (inspect.isfunction(value) and value.__name__ == name
                and value.__code__.co_filename == path):
            return f"{name} in {path} was replaced at run time"
    for name in ("run", "_satisfies_contraints", "_satisfies_locus_contraints",
                 "_satisfies_alert_contraints"):
        if getattr(filter_class, name) is not getattr(BaseFilter, name):
            return f"{filter_class.__name__}.{name} is not the DevKit's"
    return None
