"""Each vendor's request rates that tierdesk plans with: how long reads and writes take at them.

`tierdesk plan` estimates how long a backlog search takes and how long enforcing a policy change
would take from these figures (requests per minute); `--rate VENDOR=N` overrides the write rate.
They are planning figures: tierdesk never paces itself by them, it honours the vendor's 429 and
`Retry-After` (connectors/retry.py), so a wrong figure only makes an estimate wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VendorRate:
    """Requests per minute for reads and for ticket writes, and where each figure comes from."""

    reads_per_minute: float
    writes_per_minute: float
    reads_source: str
    writes_source: str
    #: Read requests a backlog search spends per ticket: its share of a search page, plus the
    #: per-ticket read when the search answer does not carry the whole ticket.
    reads_per_ticket: float


RATES: Mapping[str, VendorRate] = {
    # Zendesk publishes both figures. Reads: the account's plan limit, of which Team (200 a
    # minute) is the lowest (Zendesk developer docs "Rate limits", "Zendesk Support plan
    # limits"; ../shared/vendor/README.md). Writes: "Update Ticket" has its own endpoint limit
    # of 100 requests a minute per account whatever the plan ("Rate limits", "Endpoint rate
    # limits"; Zendesk help article 8638126078234 "Is it possible to reach the API rate limit
    # when I update tickets in the user interface").
    "zendesk": VendorRate(
        reads_per_minute=200.0,
        writes_per_minute=100.0,
        reads_source="Zendesk developer docs, Rate limits: Team plan 200 requests/minute (the"
                     " lowest plan limit)",
        writes_source="Zendesk developer docs, Rate limits: Update Ticket endpoint 100"
                      " requests/minute per account",
        # One ticket read each (the export's results lack the requester and organization
        # sideloads, connectors/zendesk/admin.py) and one export page per 100 tickets; the
        # comments read an attachment check adds is not counted.
        reads_per_ticket=1.01,
    ),
    # Jira Cloud publishes no request count for API-token traffic: it is "governed by existing
    # burst rate limits" (per second, per endpoint and method) and a per-issue write limit
    # (Atlassian "Rate limiting", developer.atlassian.com/cloud/jira/platform/rate-limiting;
    # "Build an app that respects rate limits"). One request a second is an assumption, listed
    # as unconfirmed in connectors/jira/README.md; Data Center has no limit unless an admin sets
    # one. Override it with --rate jira=N.
    "jira": VendorRate(
        reads_per_minute=60.0,
        writes_per_minute=60.0,
        reads_source="assumed (unconfirmed): Atlassian publishes no count for API-token"
                     " traffic; 1 request/second",
        writes_source="assumed (unconfirmed): Atlassian publishes no count for API-token"
                      " traffic; 1 request/second",
        # One search page per 100 issues carries every field a decision reads (admin.py).
        reads_per_ticket=0.01,
    ),
}
