"""`sandbox/` stands apart: a vendor emulator imports nothing from tierdesk's connectors."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"


def test_importing_sandbox_loads_no_connectors_module() -> None:
    """A fresh interpreter that imports the whole sandbox has no `connectors` module loaded."""
    code = (
        "import sys, json, pkgutil, importlib, sandbox\n"
        "for m in pkgutil.walk_packages(sandbox.__path__, 'sandbox.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name for name in json.loads(out.stdout) if name.split(".")[0] == "connectors"}
    assert not loaded, sorted(loaded)


def test_sandbox_source_imports_no_connectors_module() -> None:
    """No import statement anywhere in sandbox/ names a `connectors` module."""
    for path in SANDBOX.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "connectors", f"{path} imports {name}"
