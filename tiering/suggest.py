"""Did-you-mean hints for misspelt names in a policy (keys, tiers, plans, fields).

`difflib.get_close_matches` (the standard library's ratio of matching characters) does the
matching: a well-kept, dependency-free ranking, compared case-insensitively because names are
often mistyped only in case (`l2` for `L2`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`; did you mean "X"?` for the closest of `choices` to `name`, or "" when none is close."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if not found or by_lower[found[0]] == name:
        return ""
    return f'; did you mean "{by_lower[found[0]]}"?'
