"""How to reach one Zendesk account and act on it (built by webhooks.settings, passed to
ZendeskConnector), and the pause after a 429 that says nothing of when to come back."""

from __future__ import annotations

from dataclasses import dataclass

#: When a 429 carries no usable Retry-After (Zendesk documents that it always sends one), wait
#: one full rate-limit window: Zendesk's limits are per minute.
DEFAULT_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class ZendeskConfig:
    """Connection and behaviour settings for a Zendesk account."""

    #: `https://{subdomain}.zendesk.com`, or any base URL (sandbox, tests): TIERDESK_ZENDESK_URL.
    base_url: str
    email: str | None = None
    api_token: str | None = None
    #: The bot's own user id: events it caused are dropped, and the trigger excludes it.
    bot_user_id: int | None = None
    #: Seconds for connect and read on every request.
    timeout: float = 10.0

    def __repr__(self) -> str:
        return (
            f"ZendeskConfig(base_url={self.base_url!r}, email={self.email!r},"
            f" api_token={'***' if self.api_token else None}, bot_user_id={self.bot_user_id!r})"
        )
