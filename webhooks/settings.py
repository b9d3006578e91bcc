"""The service's settings: every `TIERDESK_*` environment variable (and `.env`), validated once.

This is the only module that reads the environment. Everything else receives values through
keyword arguments: the connector configs (`jira_config()`, `zendesk_config()`), the inbox URL,
the receiver's limits. Secrets are `SecretStr`, so they never show in `repr`, logs or errors.

`load_settings()` turns pydantic's validation errors into a `SettingsError` whose lines name the
variable and what is expected, e.g. `TIERDESK_PORT: expected an integer, got "http"`, so
`tierdesk serve` can print them instead of a traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.jira.config import JiraConfig
from connectors.zendesk.config import ZendeskConfig

ENV_PREFIX = "TIERDESK_"

#: What to set so a vendor is configured (said when none is: the service names no vendor).
CONFIGURE_A_VENDOR = (
    "set TIERDESK_JIRA_URL (and its credentials) or TIERDESK_ZENDESK_SUBDOMAIN /"
    " TIERDESK_ZENDESK_URL"
)

_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "literal_error": "one of the allowed values",
    "greater_than": "a larger number",
    "greater_than_equal": "a larger number",
    "less_than_equal": "a smaller number",
}


class SettingsError(ValueError):
    """Settings that cannot be used; `lines` has one `TIERDESK_NAME: what is wrong` per problem."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


class Settings(BaseSettings):
    """All settings of the receiver, the worker and the CLI (environment prefix `TIERDESK_`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    #: Path of the YAML tier policy; unset means the embedded example policy.
    policy: Path | None = None
    #: `sqlite:///./tierdesk.db` (one host) or `postgresql://...` (several replicas).
    database_url: str = "sqlite:///./tierdesk.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)

    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: SecretStr | None = None
    jira_pat: SecretStr | None = None
    jira_webhook_secret: SecretStr | None = None
    #: During a secret rotation: the secret being retired, still accepted beside the current
    #: one until it is unset (admin guide, "Rotating a webhook secret").
    jira_webhook_secret_previous: SecretStr | None = None
    #: `user:password`: also accept Jira deliveries that carry these HTTP Basic credentials
    #: (Data Center webhooks that cannot sign). An explicit opt-in; compared in constant time.
    jira_webhook_basic_auth: SecretStr | None = None
    #: Send edits with notifyUsers=false: needs Administer Projects (or Jira admin) for the bot.
    jira_quiet_edits: bool = False
    #: The bot's own account (accountId on Cloud, user name on Data Center).
    jira_account_id: str | None = None
    jira_deployment: Literal["cloud", "datacenter"] = "cloud"
    #: `role:Administrators` or `group:support-agents`: who may see the checklist comment;
    #: `public` posts it unrestricted on purpose. Required with Jira unless
    #: `jira_service_management` (internal comments): the checklist never reaches customers by
    #: a missed setting.
    jira_comment_visibility: str | None = None
    jira_service_management: bool = False
    #: JSM: the custom field id of the Organizations field (e.g. customfield_10002), so a
    #: ticket's organization can decide its plan.
    jira_organization_field: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")
    #: A custom field holding the customer's organization name (sites without JSM).
    jira_customer_field: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")
    #: A custom field holding the customer's support plan (a plan name of the policy).
    jira_plan_field: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+$")

    zendesk_subdomain: str | None = None
    zendesk_url: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    zendesk_webhook_secret: SecretStr | None = None
    zendesk_webhook_secret_previous: SecretStr | None = None
    zendesk_user_id: int | None = None
    #: The HMAC-SHA256 secret of the SLA notify webhooks (`sla.on_*.notify`) that name none of
    #: `sla_notify_secrets` (webhooks/notify.py; admin guide, "SLA notify webhooks").
    sla_notify_secret: SecretStr | None = None
    #: Named secrets for notify webhooks, a JSON object `{"oncall": "..."}`; a notify with
    #: `secret: oncall` is signed with that one.
    sla_notify_secrets: dict[str, SecretStr] = {}

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: A connection that has not sent its request line and headers within this (s) is closed.
    header_timeout: float = Field(default=10.0, gt=0)
    #: A request body not complete within this (s) of its headers is answered 408 and closed.
    body_timeout: float = Field(default=30.0, gt=0)
    #: Request line and headers over this many bytes are answered 431 and closed.
    max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    #: Open client connections at most (lowered to the file-descriptor limit minus a reserve);
    #: one more closes the oldest connection that is not running a request.
    max_connections: int = Field(default=1000, ge=1)
    #: Zendesk signature timestamps further than this from now (seconds) are refused as replays.
    signature_max_age: int = Field(default=300, ge=1)
    #: Signed Jira bodies whose `timestamp` is further than this from now (seconds) are refused
    #: as replays; longer than Atlassian's retry window (about 30 minutes).
    jira_replay_horizon: int = Field(default=7200, ge=3600)
    #: Connect and read timeout of every vendor request, seconds.
    http_timeout: float = Field(default=10.0, gt=0)
    #: Attempts per event before it becomes a dead letter.
    max_attempts: int = Field(default=8, ge=1)
    #: How long a worker's claim on a ticket lasts before another worker may take it over.
    lease_seconds: float = Field(default=120.0, gt=0)
    #: Upper bound of the retry backoff, seconds (Retry-After may ask for longer).
    retry_max_delay: float = Field(default=600.0, gt=0)
    #: Label loops (webhooks/loops.py): after this many label rewrites of one ticket within
    #: `loop_window_minutes`, tierdesk stops writing to it and leaves one internal note.
    loop_max_rewrites: int = Field(default=5, ge=2)
    loop_window_minutes: float = Field(default=10.0, gt=0)
    #: Worker threads per process (each holds one ticket at a time).
    worker_threads: int = Field(default=2, ge=1, le=64)
    #: Requests in flight to one vendor from one process. 1 guarantees that no request reaches
    #: the vendor after it answered 429/503 and before its Retry-After; more trades that for
    #: throughput against a slow vendor (a request already on the wire may land in the window).
    vendor_concurrency: int = Field(default=1, ge=1, le=64)
    #: Days to keep processed events and decision records (`tierdesk explain` history); 0
    #: keeps everything. Pending events and dead letters are never pruned.
    retention_days: float = Field(default=30.0, ge=0)
    #: Who commits the receiver's deliveries in `tierdesk serve`: `process`, a child process
    #: (the event loop keeps a core to itself: webhooks/writer.py), or `thread`, a thread of
    #: the serving process (no child process, for platforms that forbid one).
    inbox_writer: Literal["process", "thread"] = "process"
    #: `serve` runs the `tierdesk doctor` checks in the background at start-up and logs a
    #: one-line summary (never refusing to start); false skips those reads.
    startup_doctor: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator(
        "jira_url", "jira_email", "jira_account_id", "jira_comment_visibility",
        "zendesk_subdomain", "zendesk_url", "zendesk_email", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # An exported-but-empty variable (`TIERDESK_JIRA_URL=`) means "not configured".
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("jira_url", "zendesk_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f'expected an http:// or https:// URL, got "{value}"')
        return value.rstrip("/")

    @field_validator("jira_comment_visibility")
    @classmethod
    def _visibility(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value == "public":
            return value
        kind, sep, name = value.partition(":")
        if not sep or kind not in ("role", "group") or not name.strip():
            raise ValueError(
                f'expected "role:<project role>", "group:<group name>" or "public" (unrestricted),'
                f' got "{value}"'
            )
        return value

    @field_validator("zendesk_subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "." in value or "/" in value:
            raise ValueError(
                f'expected only the subdomain (e.g. "acme" for acme.zendesk.com), got "{value}";'
                " use TIERDESK_ZENDESK_URL for a full base URL"
            )
        return value

    @model_validator(mode="after")
    def _complete_vendors(self) -> Settings:
        problems: list[str] = []
        if self.jira_url and not (self.jira_pat or (self.jira_email and self.jira_api_token)):
            problems.append(
                "TIERDESK_JIRA_URL is set but no credentials: set TIERDESK_JIRA_EMAIL and"
                " TIERDESK_JIRA_API_TOKEN (Cloud) or TIERDESK_JIRA_PAT (Data Center)"
            )
        jira = self.jira_config()
        problem = jira.comment_audience_problem() if jira is not None else None
        if problem is not None:
            problems.append(problem)
        if (self.zendesk_url or self.zendesk_subdomain) and not (
            self.zendesk_email and self.zendesk_api_token
        ):
            problems.append(
                "Zendesk is configured but has no credentials: set TIERDESK_ZENDESK_EMAIL and"
                " TIERDESK_ZENDESK_API_TOKEN"
            )
        basic = _reveal(self.jira_webhook_basic_auth)
        if basic is not None:
            user, sep, password = basic.partition(":")
            if not sep or not user or len(password) < 16:
                problems.append(
                    "TIERDESK_JIRA_WEBHOOK_BASIC_AUTH: expected user:password with a password of"
                    " at least 16 characters (it is the only thing that authenticates an"
                    " unsigned delivery), e.g. jira:$(openssl rand -hex 16); unset it to accept"
                    " signed deliveries only"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ------------------------------------------------------------------ connector configs

    def jira_config(self) -> JiraConfig | None:
        """The Jira connector's config, or None when Jira is not configured."""
        if not self.jira_url:
            return None
        visibility: tuple[Literal["role", "group"], str] | None = None
        if self.jira_comment_visibility and self.jira_comment_visibility != "public":
            kind, _, name = self.jira_comment_visibility.partition(":")
            visibility = ("role" if kind == "role" else "group", name.strip())
        return JiraConfig(
            base_url=self.jira_url,
            email=self.jira_email,
            api_token=_reveal(self.jira_api_token),
            pat=_reveal(self.jira_pat),
            bot_account_id=self.jira_account_id,
            deployment=self.jira_deployment,
            comment_visibility=visibility,
            service_management=self.jira_service_management,
            public_comments=self.jira_comment_visibility == "public",
            organization_field=self.jira_organization_field,
            customer_field=self.jira_customer_field,
            plan_field=self.jira_plan_field,
            quiet_edits=self.jira_quiet_edits,
            timeout=self.http_timeout,
        )

    def zendesk_config(self) -> ZendeskConfig | None:
        """The Zendesk connector's config, or None when Zendesk is not configured.

        `TIERDESK_ZENDESK_URL` (sandboxes, tests) wins over `TIERDESK_ZENDESK_SUBDOMAIN`."""
        if self.zendesk_url:
            base = self.zendesk_url
        elif self.zendesk_subdomain:
            base = f"https://{self.zendesk_subdomain}.zendesk.com"
        else:
            return None
        return ZendeskConfig(
            base_url=base,
            email=self.zendesk_email,
            api_token=_reveal(self.zendesk_api_token),
            bot_user_id=self.zendesk_user_id,
            timeout=self.http_timeout,
        )

    def connector_config(self, vendor: str) -> JiraConfig | ZendeskConfig | None:
        """`vendor`'s connector config, or None when that vendor is not configured."""
        configs = {"jira": self.jira_config, "zendesk": self.zendesk_config}
        return configs[vendor]() if vendor in configs else None

    def webhook_replay_horizon(self) -> float:
        """Seconds a signed body's own time may be from now (TIERDESK_JIRA_REPLAY_HORIZON: of
        the vendors, only Jira signs a body time, connectors.base.Replayed)."""
        return float(self.jira_replay_horizon)

    def configured_vendors(self) -> tuple[str, ...]:
        """The vendors whose connection is configured (their URL or subdomain is set)."""
        return tuple(v for v in ("jira", "zendesk") if self.connector_config(v) is not None)

    def webhook_secret(self, vendor: str) -> str | None:
        """The signing secret of `vendor`'s webhooks, or None (then every delivery is refused)."""
        secret = {"jira": self.jira_webhook_secret, "zendesk": self.zendesk_webhook_secret}.get(
            vendor
        )
        return _reveal(secret) or None

    def previous_webhook_secret(self, vendor: str) -> str | None:
        """The secret being rotated out for `vendor`, still accepted until it is unset."""
        secret = {
            "jira": self.jira_webhook_secret_previous,
            "zendesk": self.zendesk_webhook_secret_previous,
        }.get(vendor)
        return _reveal(secret) or None

    def notify_secret(self, name: str | None) -> str | None:
        """The secret a notify webhook is signed with: `sla_notify_secrets[name]` when it names
        one, else `sla_notify_secret`; None when that is unset."""
        if name is not None:
            return _reveal(self.sla_notify_secrets.get(name)) or None
        return _reveal(self.sla_notify_secret) or None

    def webhook_basic_auth(self, vendor: str) -> tuple[str, str] | None:
        """The HTTP Basic (user, password) a `vendor` delivery may carry instead of a signature
        (Jira only, opt-in), or None."""
        value = _reveal(self.jira_webhook_basic_auth) if vendor == "jira" else None
        if not value:
            return None
        user, _, password = value.partition(":")
        return user, password


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _line(err: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if not loc:
        return msg
    name = ENV_PREFIX + loc[0].upper()
    kind = str(err.get("type", ""))
    expected = _EXPECTED.get(kind)
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{name}: expected {allowed}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        return f"{name}: {msg.lower()}"
    if expected:
        return f"{name}: expected {expected}"
    return f"{name}: {msg}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and `.env`); raise `SettingsError` naming each
    bad variable. `overrides` (keyword names as the fields) win over the environment."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError([_line(e) for e in exc.errors()]) from None


#: `TIERDESK_*` variables that are not settings but are read by the test suite and the
#: benchmarks (never by the service): not reported as unknown.
_NOT_SETTINGS = ("TIERDESK_TEST_", "TIERDESK_E2E_", "TIERDESK_REPLICA_", "TIERDESK_BENCH_")


def setting_names() -> list[str]:
    """Every variable the settings read, e.g. `TIERDESK_JIRA_URL`."""
    return sorted(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def environment_warnings(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> list[str]:
    """Mistakes in variable names, one line each, for start-up warnings (nothing is refused:
    a misspelt name only means a setting keeps its default, which is what the admin must hear).

    - an unknown `TIERDESK_*` variable (environment or `env_file`), with the closest setting;
    - an unprefixed `JIRA_*` / `ZENDESK_*` that is a setting's name without `TIERDESK_`.
    """
    env = dict(os.environ if environ is None else environ)
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values  # pydantic-settings' own .env reader

        for key, value in dotenv_values(env_file).items():
            env.setdefault(key, value or "")
    known = setting_names()
    lines: list[str] = []
    for name in sorted(env):
        upper = name.upper()
        if upper.startswith(ENV_PREFIX):
            if upper in known or upper.startswith(_NOT_SETTINGS):
                continue
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else " (see the admin guide's settings)"
            lines.append(f"{name} is not a tierdesk setting and is ignored{hint}")
        elif upper.startswith(("JIRA_", "ZENDESK_")):
            prefixed = ENV_PREFIX + upper
            if prefixed in known and not any(k.upper() == prefixed for k in env):
                lines.append(f"{name} is set but tierdesk reads {prefixed}: its settings take"
                             f" the {ENV_PREFIX} prefix")
    return lines
