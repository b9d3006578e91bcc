"""Problems in a policy file and their wording: `Problem`, `PolicyError`, line numbers.

Each problem names the file, the key path, what was expected and the line:

    policy.yaml: targets.L3.zendesk.group_id: expected an integer, got "three" (line 58)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy file."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}: {self.path}: " if self.path else f"{source}: "
        line = f" (line {self.line})" if self.line else ""
        return f"{where}{self.message}{line}"


class PolicyError(ValueError):
    """A policy file that cannot be used; `problems` lists every reason."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))

    @property
    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    given = err.get("input")
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against the policy reference)"
    if kind == "literal_error":
        return f"expected {err.get('ctx', {}).get('expected', 'another value')}, got {_show(given)}"
    if kind == "string_pattern_mismatch":
        return (
            f"{_show(given)} is not a valid name: use letters, digits, '-', '_' or '.',"
            " starting with a letter or digit"
        )
    if kind == "too_short":
        return "must not be empty"
    if kind == "greater_than_equal":
        return f"expected a number >= {err.get('ctx', {}).get('ge')}, got {_show(given)}"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return str(err["msg"])


# --------------------------------------------------------------------------- line numbers


def _line_map(node: yaml.Node | None) -> dict[tuple[str | int, ...], int]:
    """Map each key path in a YAML document to the (1-based) line it starts on."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                kp = (*path, str(key.value))
                lines[kp] = key.start_mark.line + 1
                walk(value, kp)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return lines


def _line_for(lines: Mapping[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None
