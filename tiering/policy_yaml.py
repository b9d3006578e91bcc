"""Bounded YAML reading of a policy file: size and depth limits, no aliases, one parse.

A policy is text an operator (or anyone who can write the file) controls, so reading it is
bounded (issue 14): at most `MAX_POLICY_BYTES`, no YAML aliases (a 506-byte "billion laughs" file
expanded to 9 GB) and at most `MAX_POLICY_DEPTH` levels of nesting. `_parse` returns the node
tree (for line numbers) and the data; `tiering.policy.load_policy` turns a refusal into a problem.
"""

from __future__ import annotations

from typing import Any, cast

import yaml

#: The largest policy file accepted (bytes of UTF-8). The biggest reference policy is about 10 KB
#: and bench/decide.py's 2,000 customers about 150 KB; this much loads in well under 2 s.
MAX_POLICY_BYTES = 256 * 1024
#: The deepest nesting of mappings and lists accepted; a policy needs about 6.
MAX_POLICY_DEPTH = 32


class _Refused(yaml.composer.ComposerError):
    """A YAML construct policies do not allow (an alias, too deep a nesting)."""


#: libyaml's parser and loader when PyYAML was built with it (the wheels are): about 8 times
#: faster than the pure-Python ones, which keeps the largest policy allowed under a second.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TOO_DEEP = f"nested deeper than {MAX_POLICY_DEPTH} levels (a policy needs about 6)"
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _prescan(text: str) -> None:
    """Refuse aliases and deep nesting from the event stream, before any tree is built.

    An alias (`*name`) lets a few bytes stand for an exponential tree ("billion laughs": 506
    bytes took `policy check` to 9 GB); a policy never needs one, so it is refused where it
    occurs rather than bounded after expansion. The parser is not recursive; the composer and
    the validator are, so nesting is counted here first."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                None, None,
                f"YAML aliases (*{event.anchor}) are not allowed in a policy: write the value"
                " out in full",
                cast(Any, event.start_mark),
            )
        if isinstance(event, _OPENS):
            depth += 1
            if depth > MAX_POLICY_DEPTH:
                raise _Refused(
                    None, None,
                    _TOO_DEEP,
                    cast(Any, event.start_mark),
                )
        elif isinstance(event, _CLOSES):
            depth -= 1


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (for line numbers) and the data, from one bounded parse."""
    _prescan(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data
