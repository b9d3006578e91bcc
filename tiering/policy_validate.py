"""One-pass validation of a policy: every structural problem and every problem of meaning.

Structure (types, unknown keys) is checked by pydantic; meaning by tiering/policy_checks.py.
Both are reported in one pass (`_validate`): the values pydantic refuses are set aside and
validation is repeated on the rest, so the checks of meaning still run on everything that is
well-formed. Misspelt keys get a did-you-mean (tiering/suggest.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from tiering.policy_checks import _semantic_errors
from tiering.policy_models import PolicyDoc
from tiering.policy_problems import _describe
from tiering.sla_checks import semantic_errors as _sla_semantic_errors
from tiering.suggest import did_you_mean

Loc = tuple[str | int, ...]
#: Validation rounds at most: each sets aside what the previous one refused (a policy needs 2 or
#: 3: a refused required value makes its object go in the next round).
_MAX_ROUNDS = 8


def _validate(
    data: dict[str, Any], files: Mapping[str, str], unreadable: Mapping[str, str] | None = None
) -> tuple[PolicyDoc | None, list[tuple[Loc, str]]]:
    """The validated document and every problem, structural and of meaning, in one pass.

    Pydantic stops at nothing but reports only what it could check: a value it refuses hides
    the checks of meaning (unknown tiers, plans, fields) of the whole file, and an object with a
    refused value hides its own cross-key checks. So each refused value is set aside (an unknown
    key or a bad value deleted; an object missing a required key or refused as a whole
    deleted) and the rest validated again, until it validates. The checks of meaning then run
    on what is left; the ones about objects that lost a value, and about names whose definition
    was set aside, are dropped (they would blame a symptom of a problem already reported).
    A policy missing a required top-level key (`tiers`, `default_tier`) gets no checks of
    meaning: almost every name in it refers to the tiers."""
    work = copy.deepcopy(data)
    #: For each list of `work` (by id), the original index of each item still in it.
    origin: dict[int, list[int]] = {}
    found: list[tuple[Loc, str]] = []
    touched: list[Loc] = []  # original locations whose objects lost something
    dropped_names: set[str] = set()
    set_aside: set[Loc] = set()
    at_parent: set[Loc] = set()  # objects that lost an unknown key
    for _ in range(_MAX_ROUNDS):
        try:
            doc = PolicyDoc.model_validate(work)
        except ValidationError as exc:
            deletions: list[tuple[Any, str | int]] = []
            hopeless = False
            for err in exc.errors():
                loc = tuple(err["loc"])
                full = _original_loc(work, loc, origin)
                kind = err["type"]
                if not (kind == "missing" and full in set_aside):  # else: reported already
                    message = _describe(err)
                    if kind == "extra_forbidden":
                        message = _unknown_key(full)
                    found.append((full, message))
                if kind == "missing" and len(loc) == 1:
                    # A required top-level key: a stand-in where one is harmless, else stop.
                    if _stand_in(work, str(loc[0])):
                        touched.append(full)
                    else:
                        hopeless = True
                    continue
                target, key, original = _resolve(
                    work, loc[:-1] if kind == "missing" else loc, origin
                )
                if target is None:
                    hopeless = True
                    continue
                value = target[key]
                if kind == "extra_forbidden":
                    # its object's own cross-key checks ("give group_id") would blame the typo
                    at_parent.add(original[:-1])
                else:
                    whole = kind == "missing" or isinstance(value, dict) or len(original) < 2
                    touched.append(original if whole else original[:-1])
                if isinstance(value, str):
                    dropped_names.add(value)  # a refused name (a tier "L 0" ...)
                if isinstance(key, str) and len(original) == 2 and kind != "extra_forbidden":
                    dropped_names.add(key)  # a refused named entry (plans.gold ...)
                set_aside.add(original)
                deletions.append((target, key))
            if hopeless:  # the rest of this round is reported; there is no next one
                return None, found
            _delete(deletions, origin)
            continue
        break
    else:  # pragma: no cover - a policy needs 2 or 3 rounds
        return None, found
    meaning = [*_semantic_errors(doc), *_sla_semantic_errors(
        doc.calendars, doc.sla, tiers=doc.tiers, plans=doc.plans, targets=doc.targets,
        files=files, unreadable=unreadable,
    )]
    for loc, message in meaning:
        original = _original_loc(work, loc, origin)
        if original in at_parent or any(original[:len(t)] == t for t in touched):
            continue
        if any(f'"{name}"' in message for name in dropped_names):
            continue
        found.append((original, _original_refs(message, work, origin)))
    return (doc if not found else None), found


def _stand_in(work: dict[str, Any], key: str) -> bool:
    """Put a harmless stand-in for a missing or refused required top-level key, if there is
    one: `version` 1, `default_tier` the first tier (its own problem is reported already)."""
    if key == "version":
        work["version"] = 1
        return True
    tiers = work.get("tiers")
    if key == "default_tier" and isinstance(tiers, list) and tiers and isinstance(tiers[0], str):
        work["default_tier"] = tiers[0]
        return True
    return False


def _resolve(work: Any, loc: Loc, origin: dict[int, list[int]]
             ) -> tuple[Any, str | int, Loc]:
    """The container and key of `loc` in `work` (None when it is not there: pydantic's own
    tags, such as a union member's name, are dropped), and `loc` in the original file's
    indexes."""
    node = work
    parent: Any = None
    key: str | int = ""
    original: list[str | int] = []
    for part in loc:
        if isinstance(node, dict) and part in node:
            parent, key = node, part
            original.append(part)
            node = node[part]
        elif isinstance(node, dict) and part == "[key]":
            break  # the key itself is refused: it goes with its value
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, key = node, part
            original.append(origin.get(id(node), list(range(len(node))))[part])
            node = node[part]
        else:
            break
    return parent, key, tuple(original)


def _original_loc(work: Any, loc: Loc, origin: dict[int, list[int]]) -> Loc:
    """`loc` (in `work`'s indexes) in the original file's indexes."""
    node = work
    out: list[str | int] = []
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(origin.get(id(node), list(range(len(node))))[part])
            node = node[part]
        else:
            out.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)


_REF = re.compile(r"\b(rules|customers)\[(\d+)\]")


def _original_refs(message: str, work: Any, origin: dict[int, list[int]]) -> str:
    """A message naming `rules[k]` or `customers[k]`, with k an index of the original file."""
    def fix(m: re.Match[str]) -> str:
        items = work.get(m.group(1))
        k = int(m.group(2))
        if isinstance(items, list) and 0 <= k < len(items):
            k = origin.get(id(items), list(range(len(items))))[k]
        return f"{m.group(1)}[{k}]"
    return _REF.sub(fix, message)


def _delete(deletions: list[tuple[Any, str | int]], origin: dict[int, list[int]]) -> None:
    """Delete each (container, key), list items from the last so indexes stay right, keeping
    the original index of every list item that stays."""
    by_list: dict[int, tuple[list[Any], set[int]]] = {}
    for target, key in deletions:
        if isinstance(target, dict):
            target.pop(key, None)
        elif isinstance(target, list) and isinstance(key, int):
            by_list.setdefault(id(target), (target, set()))[1].add(key)
    for ident, (items, keys) in by_list.items():
        kept = origin.get(ident, list(range(len(items))))
        for k in sorted(keys, reverse=True):
            del items[k]
            del kept[k]
        origin[ident] = kept


def _unknown_key(loc: Loc) -> str:
    """An unknown key's problem, with the closest key allowed there."""
    model = _model_at(loc[:-1])
    hint = did_you_mean(str(loc[-1]), model.model_fields) if model is not None else ""
    if hint:
        return f"unknown key{hint}"
    return "unknown key (check its spelling against the policy reference)"


def _unwrap(tp: Any) -> Any:
    """The type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model whose keys are allowed at `loc` of a policy, or None."""
    tp: Any = PolicyDoc
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
