"""docs/layout.md stays a true map: every module of the package and every content file is listed
(by its path from the repository root, in backticks), and every such path it names exists, so a new
module cannot go unmentioned and a renamed one cannot linger."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "docs" / "layout.md"


def _named() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", LAYOUT.read_text()))


def _holds_something(init: Path) -> bool:
    """An `__init__.py` is listed unless it holds only a docstring and re-exports (imports and
    `__all__`), as docs/layout.md says."""
    body = ast.parse(init.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return any(
        not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"])
        for node in body
    )


def test_every_module_is_listed() -> None:
    """A module docs/layout.md does not mention is one a reader cannot find by its purpose."""
    modules = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "cds_service").rglob("*.py"))
        if path.name != "__init__.py" or _holds_something(path)
    ]
    assert [m for m in modules if m not in _named()] == []


def test_every_content_file_is_listed() -> None:
    """Each file of cards/ (templates/ aside, listed as a folder) is content a reviewer must find."""
    files = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "cards").iterdir()) if p.is_file()]
    assert [f for f in files if f not in _named()] == []


def test_every_listed_path_exists() -> None:
    """A path to the code or the content that no longer exists sends the reader nowhere."""
    listed = sorted(p for p in _named() if p.startswith(("cds_service/", "cards/")))
    assert [p for p in listed if not (ROOT / p).exists()] == []
