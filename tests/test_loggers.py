"""Every logger the product creates is under `tierdesk.`, so configure_logging formats its lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [path for package in ("connectors", "tiering", "webhooks", "sandbox")
           for path in sorted((ROOT / package).rglob("*.py"))]
CONFIGURE = ROOT / "webhooks" / "logging.py"


def _logger_names(path: Path) -> list[tuple[int, str | None]]:
    """(line, name) of each `getLogger(...)` call in `path`; name None when not a literal."""
    found: list[tuple[int, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if called != "getLogger":
            continue
        arg = node.args[0] if node.args else None
        literal = None
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            literal = arg.value
        if arg is not None and isinstance(arg, ast.Name) and arg.id == "LOGGER_NAME":
            literal = "tierdesk"
        found.append((node.lineno, literal))
    return found


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(ROOT)))
def test_loggers_are_under_tierdesk(path: Path) -> None:
    """A product module names its loggers `tierdesk` or `tierdesk.<area>`, never `__name__`."""
    for line, name in _logger_names(path):
        if name is not None and name.startswith("uvicorn"):
            continue  # configure_logging formats uvicorn's own loggers by name
        if name is None and path == CONFIGURE:
            continue  # configure_logging's loop over the names it formats
        assert name is not None, f"{path.name}:{line}: getLogger of a non-literal name"
        assert name == "tierdesk" or name.startswith("tierdesk."), f"{path.name}:{line}: {name}"
