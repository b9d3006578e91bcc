"""The vendor-neutral ticket format of `tierdesk decide` (JSON), validated into a `Ticket`.

    {"key": "SUP-1", "subject": "...", "description": "...", "labels": ["tier-l1"],
     "priority": "high", "customer": {"organization": "Acme Corp", "email": "a@acme.example"},
     "fields": {"steps_to_reproduce": "..."}, "attachments": 1, "assignee": "acc-l1",
     "last_note_key": null}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from tiering.models import Customer, FieldValue, Ticket
from tiering.policy_problems import _describe, _path

Scalar = StrictStr | StrictInt | float | bool | None


class _CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization: StrictStr | None = None
    email: StrictStr | None = None
    plan: StrictStr | None = None


class _TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: Annotated[StrictStr, Field(min_length=1)] | StrictInt
    subject: StrictStr = ""
    description: StrictStr | None = ""
    labels: list[StrictStr] = []
    priority: StrictStr | None = None
    customer: _CustomerIn = _CustomerIn()
    fields: dict[StrictStr, Scalar | list[StrictStr]] = {}
    attachments: Annotated[StrictInt, Field(ge=0)] = 0
    assignee: StrictStr | StrictInt | None = None
    group: StrictStr | StrictInt | None = None
    last_note_key: StrictStr | None = None
    comment: StrictStr | None = Field(default=None, description="ignored: free notes")


class TicketFormatError(ValueError):
    """A ticket file that does not follow the neutral format; `problems` says where and why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def ticket_from_dict(data: Any, *, source: str = "ticket") -> Ticket:
    """Validate a neutral ticket mapping into a `Ticket`, or raise `TicketFormatError`."""
    if not isinstance(data, Mapping):
        raise TicketFormatError(source, ["expected a JSON object with at least a \"key\""])
    try:
        t = _TicketIn.model_validate(data)
    except ValidationError as exc:
        raise TicketFormatError(
            source, [f"{_path(e['loc']) or '(top)'}: {_describe(e)}" for e in exc.errors()]
        ) from exc
    fields: dict[str, FieldValue] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in t.fields.items()
    }
    return Ticket(
        key=str(t.key),
        subject=t.subject,
        description=t.description or "",
        labels=frozenset(t.labels),
        priority=t.priority,
        customer=Customer(
            organization=t.customer.organization, email=t.customer.email, plan=t.customer.plan
        ),
        fields=fields,
        attachments=t.attachments,
        assignee=None if t.assignee is None else str(t.assignee),
        group=None if t.group is None else str(t.group),
        last_note_key=t.last_note_key,
    )
