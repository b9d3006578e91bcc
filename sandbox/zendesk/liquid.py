"""The Zendesk sandbox's Liquid: `{{placeholder}}` values and `{% for %}` loops in bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_LIQUID = re.compile(r"\{%\s*(for\s+(\w+)\s+in\s+([\w.]+)|endfor)\s*%\}")
_PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    node: Any = context
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return ""
    return node


def render_liquid(template: str, context: Mapping[str, Any], *, escape: bool) -> str:
    """Render placeholders and `for` loops. Unknown placeholders render empty; with `escape`
    values are JSON-escaped (no quotes added) so a JSON template stays valid JSON."""
    out: list[str] = []
    pos = 0
    while True:
        m = _LIQUID.search(template, pos)
        if m is None:
            out.append(_placeholders(template[pos:], context, escape=escape))
            return "".join(out)
        out.append(_placeholders(template[pos : m.start()], context, escape=escape))
        if m.group(1) == "endfor":
            raise ValueError("{% endfor %} without {% for %}")
        depth, scan, body_end = 1, m.end(), m.end()
        while depth:
            inner = _LIQUID.search(template, scan)
            if inner is None:
                raise ValueError(f"{{% {m.group(1)} %}} has no {{% endfor %}}")
            depth += -1 if inner.group(1) == "endfor" else 1
            body_end, scan = inner.start(), inner.end()
        body = template[m.end() : body_end]
        items = _lookup(context, m.group(3))
        for item in items if isinstance(items, list) else []:
            out.append(render_liquid(body, {**context, m.group(2): item}, escape=escape))
        pos = scan


def _placeholders(text: str, context: Mapping[str, Any], *, escape: bool) -> str:
    def resolve(match: re.Match[str]) -> str:
        node = _lookup(context, match.group(1))
        if isinstance(node, Mapping):
            node = node.get("id", "")
        if isinstance(node, list):
            node = " ".join(str(n) for n in node)
        value = "" if node is None else str(node)
        return json.dumps(value)[1:-1] if escape else value

    return _PLACEHOLDER.sub(resolve, text)
