"""`tierdesk policy schema`: the JSON Schema editors use, shipped as deploy/policy.schema.json,
with every key described, and every shipped policy valid against it and pointing at it."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from webhooks.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "deploy" / "policy.schema.json"
SHIPPED = [ROOT / "deploy" / "policy.example.yaml",
           *sorted((ROOT / "deploy" / "policies").glob("*.yaml"))]
FIRST_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def _as_editor_sees(value: Any) -> Any:
    """YAML as yaml-language-server reads it: YAML 1.2 has no date type, 2026-12-28 is text."""
    if isinstance(value, dict):
        return {k: _as_editor_sees(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_editor_sees(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def test_shipped_schema_is_the_commands_output() -> None:
    """deploy/policy.schema.json is exactly what `tierdesk policy schema` prints (regenerate it
    with `tierdesk policy schema > deploy/policy.schema.json` after changing the models)."""
    result = CliRunner().invoke(main, ["policy", "schema"])
    assert result.exit_code == 0, result.output
    assert result.output == SCHEMA_FILE.read_text(encoding="utf-8")


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself is a valid JSON Schema of the draft it names."""
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _properties(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            out.append((f"{path}.{name}", sub))
        for key, sub in node.items():
            if key != "properties":
                out += _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            out += _properties(sub, f"{path}[{i}]")
    return out


def test_every_key_has_a_description() -> None:
    """Every key of every object in the schema carries a description for the editor to show."""
    props = _properties(_schema(), "")
    assert len(props) > 80
    undescribed = [path for path, sub in props if not sub.get("description")]
    assert undescribed == []


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_is_valid_against_the_schema(path: Path) -> None:
    """The example policy and each reference policy validate against the shipped schema."""
    data = _as_editor_sees(yaml.safe_load(path.read_text(encoding="utf-8")))
    errors = [e.message for e in jsonschema.Draft202012Validator(_schema()).iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_names_the_schema_on_its_first_line(path: Path) -> None:
    """Each shipped policy's first line points yaml-language-server at deploy/policy.schema.json."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = FIRST_LINE.match(first)
    assert m is not None, first
    assert (path.parent / m.group(1)).resolve() == SCHEMA_FILE


# Each row: a mistake an editor must underline as it is typed, where, and the schema's complaint.
MISTAKES = [
    # a misspelt key
    ({"tierr": "L1"}, [], "Additional properties are not allowed ('tierr' was unexpected)"),
    # a wrong type
    ({"default_tier": 1}, ["default_tier"], "1 is not of type 'string'"),
    # a tier name that cannot become a label
    ({"tiers": ["L 0"]}, ["tiers", 0], "'L 0' does not match '^[A-Za-z0-9][A-Za-z0-9_.-]*$'"),
    # a duration without a unit
    ({"sla": {"plans": {"p": {"tiers": {"L1": {"resolution": 5}}}}}},
     ["sla", "plans", "p", "tiers", "L1", "resolution"],
     "5 is not valid under any of the given schemas"),
]


@pytest.mark.parametrize(("change", "where", "message"), MISTAKES,
                         ids=[m[2][:30] for m in MISTAKES])
def test_schema_refuses_structural_mistakes(change: dict[str, Any], where: list[str | int],
                                            message: str) -> None:
    """A structural mistake in a policy fails the schema, at its key, with a plain message."""
    data = {"version": 1, "tiers": ["L1"], "default_tier": "L1", **change}
    best = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(_schema()).iter_errors(data))
    assert best is not None
    assert (list(best.absolute_path), best.message) == (where, message)
