"""HTML built with every value escaped by default: `tag` escapes each attribute value and each
child that is not already `Html` (markup built here), so escaping is the rule, not a habit.

Escaping is the standard library's `html.escape` with quotes, which is enough for text and for
quoted attribute values (also inside inline SVG, which the HTML parser reads the same way). A
template engine would bring the same rule; for the few pages tierdesk writes, these four
functions are all it takes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping


class Html(str):
    """Markup built here, already escaped."""

    __slots__ = ()


Child = Html | str | int | float | None


def esc(value: Child) -> Html:
    """`value` as markup: `Html` as it is, anything else escaped (None: nothing)."""
    if isinstance(value, Html):
        return value
    return Html("" if value is None else html.escape(str(value), quote=True))


def tag(name: str, attrs: Mapping[str, object] | None = None, *children: Child) -> Html:
    """`<name attrs>children</name>`: attribute values and non-`Html` children escaped;
    attributes whose value is None are left out. `name` and the attribute names are the
    caller's constants, never data."""
    attributes = "".join(
        f' {key}="{html.escape(str(value), quote=True)}"'
        for key, value in (attrs or {}).items() if value is not None)
    return Html(f"<{name}{attributes}>" + "".join(esc(c) for c in children) + f"</{name}>")


def join(parts: Iterable[Child]) -> Html:
    """The parts one after another, each escaped unless it is `Html`."""
    return Html("".join(esc(p) for p in parts))
