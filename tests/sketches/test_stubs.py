"""The type stubs of the compiled modules (src/raresketch/_core.pyi, _json.pyi) name every public name of the
modules and of their classes, and nothing they lack."""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import raresketch

_KEEP_DUNDER = {"__init__", "__len__", "__contains__", "__ior__"}


def _stub_names(path: Path) -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(path.read_text())
    top, classes = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
        elif isinstance(node, ast.Assign):
            top.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.ClassDef):
            members = set()
            for m in node.body:
                if isinstance(m, ast.FunctionDef):
                    members.add(m.name)
                elif isinstance(m, ast.AnnAssign) and isinstance(m.target, ast.Name):
                    members.add(m.target.id)
            classes[node.name] = members
    return {n for n in top if not n.startswith("_")}, classes


@pytest.mark.parametrize("name", ["_core", "_json"])
def test_stub_matches_the_compiled_module(name):
    mod = importlib.import_module(f"raresketch.{name}")
    top, classes = _stub_names(Path(raresketch.__file__).parent / f"{name}.pyi")
    public = {n for n in dir(mod) if not n.startswith("_") and not inspect.ismodule(getattr(mod, n))}
    assert top == public
    for cls, members in classes.items():
        real = {a for a in vars(getattr(mod, cls)) if not a.startswith("_") or a in _KEEP_DUNDER}
        assert members == real, (cls, members ^ real)
