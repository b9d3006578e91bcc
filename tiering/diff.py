"""The semantic differences between two policies: what `tierdesk policy diff OLD NEW` prints.

Differences are of meaning, not of text: comments, key order, quoting, flow or block style and a
default written out or left implicit never show. Both policies are compared as validated models
(`model_dump`, defaults filled in), section by section:

- `tiers` (a tier added, removed, or the order changed: the order is the escalation order);
- `rules`, identified by `name` (required and unique): added, removed, renamed (same
  conditions and outcome under a new name), moved (the first matching rule wins, so order is
  meaning), and each changed key;
- `customers`, identified by their match (`organization "Acme"`); `documentation`
  requirements by tier and field; `plans`, `fields`, `targets`, `calendars` by name;
- every other key (`default_tier`, `entitlement.*`, `sla.*` ...) by its key path.

Each difference is one line, `path: what changed`, in the order of the policy reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tiering.policy import Policy

_DURATION_KEYS = frozenset({"first_response", "time_in_tier", "resolution"})


def diff_policies(old: Policy, new: Policy) -> list[str]:
    """Every semantic difference from `old` to `new`, one line each; empty when they mean the
    same."""
    a = old.doc.model_dump(mode="json")
    b = new.doc.model_dump(mode="json")
    out: list[str] = []
    for key in b:
        if key == "tiers":
            out += _tiers(a[key], b[key])
        elif key == "rules":
            out += _rules(a[key], b[key])
        elif key == "customers":
            out += _keyed_list("customers", a[key], b[key], _customer_id)
        elif key == "documentation":
            for tier in _union(a[key], b[key]):
                out += _keyed_list(f"documentation.{tier}", a[key].get(tier, []),
                                   b[key].get(tier, []), lambda r: f'field "{r["field"]}"')
        else:
            out += list(_values(key, a[key], b[key]))
    return out


def _show(value: Any, key: str = "") -> str:
    if key in _DURATION_KEYS and isinstance(value, int):
        return _duration(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):  # unset keys left out: an added object shows what it sets
        return "{" + ", ".join(f"{k}: {_show(v, str(k))}" for k, v in value.items()
                               if v not in (None, [], {})) + "}"
    return str(value)


def _duration(seconds: int) -> str:
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [*a, *(k for k in b if k not in a)]


def _values(path: str, a: Any, b: Any) -> Iterator[str]:
    """Differences of two plain values (mappings compared key by key)."""
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in _union(a, b):
            sub = f"{path}.{k}"
            if k not in a:
                yield f"{sub}: added {_show(b[k], k)}"
            elif k not in b:
                yield f"{sub}: removed (was {_show(a[k], k)})"
            else:
                yield from _values(sub, a[k], b[k])
        return
    key = path.rsplit(".", 1)[-1]
    if a is None and isinstance(b, dict):
        yield f"{path}: added {_show(b)}"
    elif b is None and isinstance(a, dict):
        yield f"{path}: removed (was {_show(a)})"
    else:
        yield f"{path}: {_show(a, key)} → {_show(b, key)}"


def _tiers(a: list[str], b: list[str]) -> list[str]:
    out = [f'tiers: "{t}" added' for t in b if t not in a]
    out += [f'tiers: "{t}" removed' for t in a if t not in b]
    common_a = [t for t in a if t in b]
    common_b = [t for t in b if t in a]
    if common_a != common_b:
        out.append(f"tiers: order changed: {_show(common_b)} (was {_show(common_a)})")
    return out


def _content(rule: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k not in ("name", "description")}


def _rules(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Rules by name; a rule removed and one added with the same conditions and outcome is a
    rename."""
    old = {r["name"]: (i, r) for i, r in enumerate(a)}
    new = {r["name"]: (i, r) for i, r in enumerate(b)}
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    renamed: dict[str, str] = {}
    for n in added:
        for m in removed:
            if m not in renamed.values() and _content(old[m][1]) == _content(new[n][1]):
                renamed[n] = m
                break
    out: list[str] = []
    for n, m in renamed.items():
        out.append(f'rules: "{m}" renamed to "{n}" (same conditions and outcome)')
    for n in added:
        if n not in renamed:
            i, r = new[n]
            outcome = f"tier {r['tier']}" if r["tier"] is not None else f"route {r['route']}"
            out.append(f'rules: "{n}" added at rules[{i}] ({outcome}, when {_show(_when(r))})')
    for m in removed:
        if m not in renamed.values():
            out.append(f'rules: "{m}" removed (was rules[{old[m][0]}])')
    same = {n: n for n in new if n in old} | renamed
    order_a = [m for m in old if m in same.values()]
    order_b = [same[n] for n in new if n in same]
    if order_a != order_b:
        out.append(
            "rules: order changed (rules are told apart by name; the first match wins):"
            f" {', '.join(order_b)} (was {', '.join(order_a)})"
        )
    for n in new:
        if n in same:
            before = dict(old[same[n]][1], name=n)
            out += list(_values(f'rules["{n}"]', before, new[n][1]))
    return out


def _when(rule: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule["when"].items() if v is not None and v is not False}


def _customer_id(entry: Mapping[str, Any]) -> str:
    kind, value = next((k, v) for k, v in entry["match"].items() if v)
    return f'{kind} "{value}"'


def _keyed_list(path: str, a: list[dict[str, Any]], b: list[dict[str, Any]],
                ident: Any) -> list[str]:
    """A list whose items are told apart by `ident`: added, removed, moved, changed."""
    old = {ident(x): x for x in a}
    new = {ident(x): x for x in b}
    out = [f"{path}: {k} added ({_show(v)})" for k, v in new.items() if k not in old]
    out += [f"{path}: {k} removed" for k in old if k not in new]
    order_a = [k for k in old if k in new]
    order_b = [k for k in new if k in old]
    if order_a != order_b:
        out.append(f"{path}: order changed: {', '.join(order_b)} (was {', '.join(order_a)})")
    for k in order_b:
        out += list(_values(f"{path}[{k}]", old[k], new[k]))
    return out
