"""parse_json (connectors/payload.py): orjson's speed, and nothing the json module accepts lost."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.payload import parse_json

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_same_value_as_the_json_module(value: object) -> None:
    raw = json.dumps(value).encode("utf-8")
    assert parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "check"),
    [
        # A lone UTF-16 surrogate in an escape: orjson refuses it, json takes it.
        (b'{"summary": "broken \\ud800 text"}', lambda v: v["summary"] == "broken \ud800 text"),
        (b'{"x": NaN}', lambda v: math.isnan(v["x"])),
        (b'{"x": Infinity}', lambda v: v["x"] == math.inf),
    ],
)
def test_what_orjson_refuses_is_read_by_json(raw: bytes, check: object) -> None:
    assert check(parse_json(raw))  # type: ignore[operator]


@pytest.mark.parametrize(
    "raw", [b"", b"{", b'{"a": 1,}', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000]
)
def test_not_json_raises_value_or_recursion_error(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        parse_json(raw)
