"""The plan document (format tierdesk-plan/1) as the HTML report reads it: models that check a
parsed `tierdesk plan --format json` document and name every problem with its key path.

The models hold the agreed shape plus the keys webhooks/plan/document.py adds to it
(`source.skipped`, `summary.rates`, `tickets[].route_before`, `tickets[].route_after`,
`tickets[].reasons_before`, `tickets[].writes`, `skipped`); those are optional, so a document
with the agreed shape alone is read too (a ticket without `route_*` reads as not routed). Keys
this version does not know are ignored: a format version may only add keys
(webhooks/plan/document.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tiering.plan import CHANGE_KINDS
from webhooks.plan.document import FORMAT

Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]


class PlanDocumentError(ValueError):
    """The document is not a tierdesk-plan/1 document; the message says what to fix."""


class _Model(BaseModel):
    # Strict: a count written as "3" or true is an error, not a guess.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class PolicyRef(_Model):
    path: str
    digest: str


class Policies(_Model):
    current: PolicyRef
    proposed: PolicyRef


class Source(_Model):
    kinds: list[Literal["inbox", "backlog"]]
    since: str | None
    tickets: Count
    #: Tickets a source could not plan (listed in `PlanDocument.skipped`).
    skipped: Count = 0


class Transition(_Model):
    from_: str = Field(alias="from")
    to: str
    count: Count


class Rate(_Model):
    writes_per_minute: Annotated[float, Field(gt=0)]
    source: str


def _with_total(value: dict[str, Any], what: str) -> dict[str, Any]:
    if "total" not in value:
        raise ValueError(f"{what} needs a \"total\" beside the per-vendor figures")
    return value


class Summary(_Model):
    tickets: Count
    changed: Count
    tiers_before: dict[str, Count]
    tiers_after: dict[str, Count]
    transitions: list[Transition]
    changes: dict[str, Count]
    writes: dict[str, Count]
    enforce_seconds: dict[str, Seconds]
    rates: dict[str, Rate] = {}

    @field_validator("changes")
    @classmethod
    def _all_kinds(cls, value: dict[str, int]) -> dict[str, int]:
        missing = [kind for kind in CHANGE_KINDS if kind not in value]
        if missing:
            raise ValueError("missing change kind(s): " + ", ".join(missing))
        return value

    @field_validator("writes")
    @classmethod
    def _writes_total(cls, value: dict[str, int]) -> dict[str, int]:
        return _with_total(value, "writes")

    @field_validator("enforce_seconds")
    @classmethod
    def _seconds_total(cls, value: dict[str, float]) -> dict[str, float]:
        return _with_total(value, "enforce_seconds")


class TicketChange(_Model):
    vendor: str
    ticket: str
    change: str
    tier_before: str | None
    tier_after: str | None
    #: The route (billing, sales ...) each policy hands the ticket to; None: not routed. A routed
    #: ticket has no tier.
    route_before: str | None = None
    route_after: str | None = None
    labels_added: list[str]
    labels_removed: list[str]
    target_before: str | None
    target_after: str | None
    note: str | None
    reasons: list[str]
    #: The current policy's reasons that the proposed one no longer gives.
    reasons_before: list[str] = []
    #: Writes enforcing the proposed decision on this ticket would send.
    writes: Count | None = None


class SkippedTicket(_Model):
    vendor: str
    ticket: str
    reason: str


class PlanDocument(_Model):
    """A plan document (format tierdesk-plan/1), checked."""

    format: Literal["tierdesk-plan/1"]
    generated_at: str
    policies: Policies
    source: Source
    summary: Summary
    tickets: list[TicketChange]
    skipped: list[SkippedTicket] = []

    @field_validator("generated_at")
    @classmethod
    def _iso8601(cls, value: str) -> str:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date and time, got {value[:40]!r}") from None
        return value


def read_document(document: Any) -> PlanDocument:
    """Check `document` (the parsed JSON of `tierdesk plan --format json`) against format
    tierdesk-plan/1, or raise PlanDocumentError listing every problem with its key path."""
    if not isinstance(document, Mapping):
        raise PlanDocumentError(
            "not a tierdesk plan document: expected a JSON object, got "
            f"{type(document).__name__}; make one with `tierdesk plan --format json`")
    version = document.get("format")
    if version is None:
        raise PlanDocumentError(
            "not a tierdesk plan document: it has no \"format\" key; make one with "
            "`tierdesk plan --format json`")
    if version != FORMAT:
        raise PlanDocumentError(
            f"plan document format {str(version)[:40]!r} is not supported: this tierdesk reads "
            f"{FORMAT!r} documents; render it with the tierdesk version that wrote it, or run "
            "`tierdesk plan` again with this one")
    try:
        return PlanDocument.model_validate(document)
    except ValidationError as exc:
        problems = [f"  {_loc(e['loc'])}: {_describe(e)}" for e in exc.errors()]
        raise PlanDocumentError(
            f"the plan document ({FORMAT}) has {len(problems)} problem(s):\n"
            + "\n".join(problems)) from exc


def _loc(loc: Iterable[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"


def _describe(error: Any) -> str:
    if error["type"] == "missing":
        return "missing (required)"
    message, value = str(error["msg"]), error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{message} (got {str(value)[:40]!r})"
    return f"{message} (got a {type(value).__name__})"
