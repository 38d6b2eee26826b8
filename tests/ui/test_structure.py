"""Static guards on the TUI's shape (issue 16): screens send messages up and never import the
App, nothing in the TUI silences the type checker to reach the App, and no private Textual API
is used (no `textual.*._module` import, no override of a Textual `_on_*` handler)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUI = ROOT / "omwizard" / "tui"


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imported(tree: ast.AST) -> list[str]:
    """Every module an import names, at any level (functions included)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_no_screen_imports_the_app() -> None:
    for path in modules(TUI / "screens"):
        bad = [m for m in imported(ast.parse(path.read_text())) if m.startswith("omwizard.tui.app")]
        assert not bad, (path, bad)


def test_no_type_ignore_in_the_tui() -> None:
    for path in modules(TUI):
        assert "type: ignore" not in path.read_text(), path


def test_no_private_textual_api() -> None:
    for path in modules(TUI):
        tree = ast.parse(path.read_text())
        private = [m for m in imported(tree)
                   if m.startswith("textual") and any(p.startswith("_") for p in m.split("."))]
        assert not private, (path, private)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        assert not item.name.startswith("_on_"), (path, node.name, item.name)
