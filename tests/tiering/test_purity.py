"""`tiering/` stays pure: it imports nothing that does I/O and reads no clock or environment."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

TIERING = Path(__file__).resolve().parents[2] / "tiering"

# Network, database, process and vendor modules, and the other two packages of tierdesk.
# (`socket` itself is not listed: the standard library's email.utils imports it when
# importlib.metadata loads, which pydantic does; nothing in tiering uses it.)
FORBIDDEN_MODULES = {
    "requests", "urllib3", "http.client", "urllib.request", "ssl", "sqlalchemy", "psycopg",
    "sqlite3", "asyncio", "subprocess", "jira", "zenpy", "fastapi", "uvicorn", "tenacity",
    "connectors", "webhooks",
}
# Business calendars (tiering/calendars.py): zoneinfo reads the packaged IANA tz database and
# holidays reads its packaged holiday-name translations (a .mo file per country), as imports read
# modules: fixed data shipped with the code, never state, the clock or the network. icalendar
# parses the ICS text it is given. copy (a working copy of the parsed policy, for the one-pass
# check) and difflib (did-you-mean) are pure computations of the standard library.
ALLOWED_IMPORTS = {
    "__future__", "collections", "dataclasses", "datetime", "hashlib", "re", "types", "typing",
    "yaml", "pydantic", "ahocorasick", "re2", "tiering", "bisect", "itertools", "zoneinfo",
    "holidays", "icalendar", "copy", "difflib",
}
FORBIDDEN_CALLS = {"open", "now", "utcnow", "today", "time", "monotonic", "getenv", "environ",
                   "random", "urandom", "sleep", "read_text", "write_text"}


def test_importing_tiering_loads_no_io_module() -> None:
    """A fresh interpreter that imports tiering has no network, database or vendor module loaded."""
    code = "import sys, json, tiering; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert FORBIDDEN_MODULES.isdisjoint(loaded), sorted(FORBIDDEN_MODULES & loaded)


def test_tiering_source_imports_only_pure_modules() -> None:
    """Every import statement in tiering/ names an allowed, side-effect-free module."""
    for path in TIERING.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name} imports {name}"


def test_tiering_source_reads_no_clock_file_or_environment() -> None:
    """No call in tiering/ reads the clock, a file, the environment or randomness."""
    for path in TIERING.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}"
            if isinstance(node, ast.Attribute) and node.attr == "environ":
                raise AssertionError(f"{path.name}:{node.lineno} reads os.environ")
