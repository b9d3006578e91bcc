"""The result of one `tierdesk doctor` check, shared by every vendor's checks.

Each vendor's `connectors/<vendor>/doctor.py` turns what it reads (never writes) into a list of
`Check`: ✔ ok, ✘ fail (tierdesk cannot work as configured; `fix` says in one line what to do),
! warn (works, but something is off or could not be checked).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "fail", "warn"]
MARKS: dict[str, str] = {"ok": "✔", "fail": "✘", "warn": "!"}


@dataclass(frozen=True, slots=True)
class Check:
    vendor: str
    #: Short and stable, e.g. "credentials", "permission BROWSE_PROJECTS in SUP".
    name: str
    status: Status
    #: What was found.
    detail: str
    #: One line: what to change (empty when nothing needs to change).
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ok(vendor: str, name: str, detail: str) -> Check:
    return Check(vendor, name, "ok", detail)


def fail(vendor: str, name: str, detail: str, fix: str) -> Check:
    return Check(vendor, name, "fail", detail, fix)


def warn(vendor: str, name: str, detail: str, fix: str = "") -> Check:
    return Check(vendor, name, "warn", detail, fix)
