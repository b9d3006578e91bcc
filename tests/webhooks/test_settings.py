"""Settings: TIERDESK_* variables, connector configs, and start-up errors that name the variable."""

from __future__ import annotations

import pytest

from webhooks.settings import SettingsError, load_settings

ALL_VARS = [
    "POLICY", "DATABASE_URL", "HOST", "PORT", "JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN",
    "JIRA_PAT", "JIRA_WEBHOOK_SECRET", "JIRA_ACCOUNT_ID", "JIRA_DEPLOYMENT",
    "JIRA_COMMENT_VISIBILITY", "JIRA_SERVICE_MANAGEMENT", "ZENDESK_SUBDOMAIN", "ZENDESK_URL",
    "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "ZENDESK_WEBHOOK_SECRET", "ZENDESK_USER_ID",
    "MAX_BODY_BYTES", "SIGNATURE_MAX_AGE", "HTTP_TIMEOUT", "MAX_ATTEMPTS",
    "JIRA_WEBHOOK_SECRET_PREVIOUS", "ZENDESK_WEBHOOK_SECRET_PREVIOUS", "JIRA_WEBHOOK_BASIC_AUTH",
    "JIRA_QUIET_EDITS", "JIRA_CUSTOMER_FIELD",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ALL_VARS:
        monkeypatch.delenv("TIERDESK_" + name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults() -> None:
    """With nothing set: SQLite next to the process, port 8080, 1 MiB bodies, 300 s, 8 attempts."""
    s = load_settings()
    assert (s.database_url, s.port, s.max_body_bytes, s.signature_max_age, s.max_attempts,
            s.http_timeout) == ("sqlite:///./tierdesk.db", 8080, 1048576, 300, 8, 10.0)
    assert s.jira_config() is None and s.zendesk_config() is None
    assert s.webhook_secret("jira") is None and s.webhook_secret("zendesk") is None


def test_jira_cloud_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jira variables become a JiraConfig (visibility parsed, timeout passed on)."""
    for k, v in {
        "JIRA_URL": "https://acme.atlassian.net/", "JIRA_EMAIL": "bot@acme.com",
        "JIRA_API_TOKEN": "tok", "JIRA_ACCOUNT_ID": "5b10", "JIRA_WEBHOOK_SECRET": "whs",
        "JIRA_COMMENT_VISIBILITY": "role:Administrators", "JIRA_SERVICE_MANAGEMENT": "true",
        "HTTP_TIMEOUT": "4.5", "JIRA_ORGANIZATION_FIELD": "customfield_10002",
    }.items():
        monkeypatch.setenv("TIERDESK_" + k, v)
    cfg = load_settings().jira_config()
    assert cfg is not None
    assert (cfg.base_url, cfg.email, cfg.api_token, cfg.pat, cfg.bot_account_id, cfg.deployment,
            cfg.comment_visibility, cfg.service_management, cfg.timeout) == (
        "https://acme.atlassian.net", "bot@acme.com", "tok", None, "5b10", "cloud",
        ("role", "Administrators"), True, 4.5)
    assert cfg.organization_field == "customfield_10002"
    assert load_settings().webhook_secret("jira") == "whs"


def test_jira_datacenter_with_pat(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Data Center site with a personal access token needs no email."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", "https://jira.corp")
    monkeypatch.setenv("TIERDESK_JIRA_PAT", "pat-1")
    monkeypatch.setenv("TIERDESK_JIRA_DEPLOYMENT", "datacenter")
    monkeypatch.setenv("TIERDESK_JIRA_COMMENT_VISIBILITY", "group:jira-agents")
    cfg = load_settings().jira_config()
    assert cfg is not None and (cfg.pat, cfg.deployment) == ("pat-1", "datacenter")
    assert (cfg.comment_visibility, cfg.public_comments) == (("group", "jira-agents"), False)


def test_jira_without_comment_audience_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jira with neither a comment visibility nor JSM is refused at start-up, naming the three
    ways out: customers never see the checklist because a setting was missed."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", "https://jira.corp")
    monkeypatch.setenv("TIERDESK_JIRA_PAT", "pat-1")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "checklist comments would be visible to everyone" in message
    for way_out in ("TIERDESK_JIRA_COMMENT_VISIBILITY to role:<project role> or group:<group>",
                    "TIERDESK_JIRA_SERVICE_MANAGEMENT=true",
                    "TIERDESK_JIRA_COMMENT_VISIBILITY=public"):
        assert way_out in message


@pytest.mark.parametrize(
    ("extra", "visibility", "jsm", "public"),
    [
        ({"JIRA_SERVICE_MANAGEMENT": "true"}, None, True, False),
        ({"JIRA_COMMENT_VISIBILITY": "public"}, None, False, True),
        ({"JIRA_COMMENT_VISIBILITY": "role:Service Desk Team"}, ("role", "Service Desk Team"),
         False, False),
    ],
)
def test_each_comment_audience_is_accepted(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, str],
    visibility: tuple[str, str] | None, jsm: bool, public: bool,
) -> None:
    """JSM internal comments, an explicit `public`, or a role/group each satisfy the check."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", "https://jira.corp")
    monkeypatch.setenv("TIERDESK_JIRA_PAT", "pat-1")
    for k, v in extra.items():
        monkeypatch.setenv("TIERDESK_" + k, v)
    cfg = load_settings().jira_config()
    assert cfg is not None
    assert (cfg.comment_visibility, cfg.service_management, cfg.public_comments) == (
        visibility, jsm, public)


def test_zendesk_url_wins_over_subdomain(monkeypatch: pytest.MonkeyPatch) -> None:
    """TIERDESK_ZENDESK_URL (sandbox) takes precedence over the subdomain."""
    monkeypatch.setenv("TIERDESK_ZENDESK_SUBDOMAIN", "acme")
    monkeypatch.setenv("TIERDESK_ZENDESK_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("TIERDESK_ZENDESK_EMAIL", "bot@acme.com")
    monkeypatch.setenv("TIERDESK_ZENDESK_API_TOKEN", "zt")
    monkeypatch.setenv("TIERDESK_ZENDESK_USER_ID", "42")
    cfg = load_settings().zendesk_config()
    assert cfg is not None
    assert (cfg.base_url, cfg.email, cfg.api_token, cfg.bot_user_id) == (
        "http://127.0.0.1:9999", "bot@acme.com", "zt", 42)


def test_zendesk_subdomain_builds_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subdomain alone becomes https://<subdomain>.zendesk.com."""
    monkeypatch.setenv("TIERDESK_ZENDESK_SUBDOMAIN", "acme")
    monkeypatch.setenv("TIERDESK_ZENDESK_EMAIL", "bot@acme.com")
    monkeypatch.setenv("TIERDESK_ZENDESK_API_TOKEN", "zt")
    cfg = load_settings().zendesk_config()
    assert cfg is not None and cfg.base_url == "https://acme.zendesk.com"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "http"}, "TIERDESK_PORT: expected an integer"),
        ({"PORT": "70000"}, "TIERDESK_PORT:"),
        ({"MAX_ATTEMPTS": "0"}, "TIERDESK_MAX_ATTEMPTS:"),
        ({"JIRA_DEPLOYMENT": "cloudy"}, "TIERDESK_JIRA_DEPLOYMENT: expected 'cloud' or"),
        ({"JIRA_URL": "acme.atlassian.net"}, "TIERDESK_JIRA_URL: expected an http:// or https://"),
        ({"JIRA_COMMENT_VISIBILITY": "admins"}, "TIERDESK_JIRA_COMMENT_VISIBILITY: expected"),
        ({"ZENDESK_SUBDOMAIN": "acme.zendesk.com"}, "TIERDESK_ZENDESK_SUBDOMAIN: expected only"),
        ({"ZENDESK_USER_ID": "bot"}, "TIERDESK_ZENDESK_USER_ID: expected an integer"),
        ({"JIRA_URL": "https://x.atlassian.net"}, "TIERDESK_JIRA_URL is set but no credentials"),
        ({"ZENDESK_SUBDOMAIN": "acme"}, "Zendesk is configured but has no credentials"),
    ],
)
def test_bad_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """Each invalid setting is reported by its variable name with what is expected."""
    for k, v in env.items():
        monkeypatch.setenv("TIERDESK_" + k, v)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert any(expected in line for line in info.value.lines), info.value.lines


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are absent from repr, str and from validation errors."""
    monkeypatch.setenv("TIERDESK_JIRA_URL", "https://x.atlassian.net")
    monkeypatch.setenv("TIERDESK_JIRA_EMAIL", "bot@x.com")
    monkeypatch.setenv("TIERDESK_JIRA_API_TOKEN", "SUPERSECRET-token")
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_SECRET", "SUPERSECRET-hook")
    monkeypatch.setenv("TIERDESK_JIRA_COMMENT_VISIBILITY", "role:Administrators")
    monkeypatch.setenv("TIERDESK_ZENDESK_API_TOKEN", "SUPERSECRET-zd")
    s = load_settings()
    assert "SUPERSECRET" not in repr(s) and "SUPERSECRET" not in str(s)
    assert "SUPERSECRET" not in repr(s.jira_config())
    monkeypatch.setenv("TIERDESK_PORT", "SUPERSECRET-port")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SUPERSECRET" not in str(info.value)


def test_dotenv_file_is_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """An optional .env in the working directory supplies settings."""
    from pathlib import Path

    Path(str(tmp_path), ".env").write_text("TIERDESK_PORT=9191\n")
    assert load_settings().port == 9191


def test_rotation_basic_auth_and_quiet_edits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Previous secrets, the Basic opt-in and quiet edits are read; the current secret comes
    first; nothing is set by default."""
    assert load_settings().previous_webhook_secret("jira") is None
    assert load_settings().webhook_basic_auth("jira") is None
    for k, v in {
        "JIRA_URL": "https://acme.atlassian.net", "JIRA_EMAIL": "bot@acme.com",
        "JIRA_API_TOKEN": "tok", "JIRA_COMMENT_VISIBILITY": "public",
        "JIRA_WEBHOOK_SECRET": "new", "JIRA_WEBHOOK_SECRET_PREVIOUS": "old",
        "ZENDESK_WEBHOOK_SECRET_PREVIOUS": "zold", "JIRA_QUIET_EDITS": "true",
        "JIRA_WEBHOOK_BASIC_AUTH": "jira:" + "x" * 16,
    }.items():
        monkeypatch.setenv("TIERDESK_" + k, v)
    s = load_settings()
    assert (s.webhook_secret("jira"), s.previous_webhook_secret("jira")) == ("new", "old")
    assert s.previous_webhook_secret("zendesk") == "zold"
    assert s.webhook_basic_auth("jira") == ("jira", "x" * 16)
    assert s.webhook_basic_auth("zendesk") is None
    cfg = s.jira_config()
    assert cfg is not None and cfg.quiet_edits


@pytest.mark.parametrize("value", ["nocolon", ":" + "x" * 20, "jira:short"])
def test_weak_basic_auth_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """TIERDESK_JIRA_WEBHOOK_BASIC_AUTH must be user:password with a 16+ character password."""
    monkeypatch.setenv("TIERDESK_JIRA_WEBHOOK_BASIC_AUTH", value)
    with pytest.raises(SettingsError, match="TIERDESK_JIRA_WEBHOOK_BASIC_AUTH"):
        load_settings()
