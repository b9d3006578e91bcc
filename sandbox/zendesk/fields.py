"""The Zendesk sandbox's date ticket fields: a value that is not `YYYY-MM-DD` is refused.

`check_custom_fields(site, data)` runs before a ticket update changes anything. Zendesk takes a
date field's value as a date-only ISO string ("2020-01-02") and refuses a datetime such as
Python's `datetime.now().isoformat()` with 422 RecordInvalid, `details.base` [{"description":
"<field title> is not valid", "error": "InvalidValue", "ticket_field_id": N,
"ticket_field_type": "FieldDate"}] (facetoe/zenpy #425, the body quoted there; zendesk/
copenhagen_theme #423: the Help Center form sends date-only strings to date fields). Null or ""
clears the field. Text fields take any text, so they have no rule here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from sandbox.wire import ApiError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Field(Protocol):
    id: int
    title: str
    type: str


class _Site(Protocol):
    @property
    def fields(self) -> Mapping[int, _Field]: ...


def _valid_date(value: Any) -> bool:
    if value is None or value == "":
        return True
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_custom_fields(site: _Site, data: Mapping[str, Any]) -> None:
    """Refuse the update (422, nothing changed) when a date field's value is not a date."""
    entries = data.get("custom_fields")
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), int | str):
            continue  # the handler itself refuses a malformed entry
        try:
            fid = int(entry["id"])
        except ValueError:
            continue
        spec = site.fields.get(fid)
        if spec is None or spec.type != "date" or _valid_date(entry.get("value")):
            continue
        raise ApiError(422, {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"base": [{
                "description": f"{spec.title} is not valid",
                "error": "InvalidValue",
                "ticket_field_id": fid,
                "ticket_field_type": "FieldDate",
            }]},
        })
