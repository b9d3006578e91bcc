"""deploy/compose.yaml and haproxy.cfg: PostgreSQL, two receivers behind one port, two workers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.cli_check import parse_cli
from tests.deploy.conftest import LiveServer
from tests.deploy.deployfiles import DEPLOY, SETTING_NAMES, env_file, yaml_documents
from tests.deploy.test_dockerfile import final_env

(COMPOSE,) = yaml_documents(DEPLOY / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENTRYPOINT = ["tierdesk"]  # the image's ENTRYPOINT; compose `command:` replaces only CMD
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "_PAT")


def argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", ["serve"])
    assert isinstance(command, list), "exec-form command lists avoid shell quoting surprises"
    return [*ENTRYPOINT, *command]


def tierdesk_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in SERVICES.items() if str(s.get("image", "")).startswith("tierdesk")}


def by_command(*command: str) -> list[str]:
    return sorted(n for n, s in tierdesk_services().items() if argv(s) == ["tierdesk", *command])


def interpolated(value: str) -> str:
    """`${NAME:?message}` / `${NAME}` replaced by `<NAME>` (compose interpolation)."""
    return re.sub(r"\$\{([A-Z_]+)[^}]*\}", r"<\1>", value)


def haproxy() -> list[tuple[str, list[str]]]:
    """haproxy.cfg as (section header, lines)."""
    sections: list[tuple[str, list[str]]] = []
    for raw in (DEPLOY / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            sections.append((line.strip(), []))
        else:
            sections[-1][1].append(line.strip())
    return sections


def test_two_receivers_and_two_workers_with_real_commands() -> None:
    """Exactly two `serve --no-worker` and two `worker` services; the CLI accepts both lines."""
    receivers = by_command("serve", "--no-worker")
    workers = by_command("worker", "--metrics-port", "9108")
    assert receivers == ["receiver-1", "receiver-2"]
    assert workers == ["worker-1", "worker-2"]
    assert set(tierdesk_services()) == {*receivers, *workers}
    assert parse_cli(["tierdesk", "serve", "--no-worker"]) == ["serve"]
    assert parse_cli(["tierdesk", "worker", "--metrics-port", "9108"]) == ["worker"]


def test_postgresql_is_the_shared_inbox() -> None:
    """A postgres service with a health check; every replica's DATABASE_URL points at it."""
    pg = SERVICES["postgres"]
    assert str(pg["image"]).startswith("postgres:")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    for name, service in tierdesk_services().items():
        url = urlsplit(interpolated(service["environment"]["TIERDESK_DATABASE_URL"]))
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.port) == ("postgres", 5432), name
        assert url.username == pg["environment"]["POSTGRES_USER"]
        assert url.path.lstrip("/") == pg["environment"]["POSTGRES_DB"]
        assert url.password == "<POSTGRES_PASSWORD>", "the password comes from the env file"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_only_the_proxy_publishes_a_port() -> None:
    """One host port (the proxy's) for the webhooks; receivers only expose TIERDESK_PORT inside."""
    published = {n: s["ports"] for n, s in SERVICES.items() if "ports" in s}
    assert list(published) == ["proxy"]
    assert len(published["proxy"]) == 1
    port = final_env()["TIERDESK_PORT"]
    for name in by_command("serve", "--no-worker"):
        assert SERVICES[name]["expose"] == [port]


def test_proxy_balances_over_both_receivers_on_a_real_endpoint(live_server: LiveServer) -> None:
    """haproxy.cfg lists both receiver services on TIERDESK_PORT and health-checks a GET route."""
    sections = dict(haproxy())
    backend = sections["backend receivers"]
    servers = [line.split()[1:3] for line in backend if line.startswith("server ")]
    port = final_env()["TIERDESK_PORT"]
    assert servers == [[n, f"{n}:{port}"] for n in by_command("serve", "--no-worker")]
    check = next(line for line in backend if line.startswith("option httpchk"))
    method, path = check.split()[2:4]
    assert method == "GET" and path == "/readyz"
    assert path in live_server.get_paths
    assert "default_backend receivers" in sections["frontend webhooks"]
    (bind,) = [line for line in sections["frontend webhooks"] if line.startswith("bind")]
    published = SERVICES["proxy"]["ports"][0]
    assert bind.split()[1] == ":" + published.split(":")[-1]
    mount = SERVICES["proxy"]["volumes"][0]
    assert mount["source"] == "./haproxy.cfg" and mount["read_only"] is True


def test_secrets_come_from_the_env_file() -> None:
    """Each tierdesk service and postgres read tierdesk.env; no secret is written in compose."""
    for name in [*tierdesk_services(), "postgres"]:
        assert SERVICES[name]["env_file"] == ["tierdesk.env"], name
    assert (DEPLOY / "tierdesk.env.example").is_file()
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            text = interpolated(str(value))
            if any(w in key.upper() for w in SECRET_WORDS):
                raise AssertionError(f"{name}: {key} is a secret: put it in tierdesk.env")
            assert "change-me" not in text, f"{name}: {key}"
    assert "POSTGRES_PASSWORD" in env_file(DEPLOY / "tierdesk.env.example")


def test_environment_names_are_settings() -> None:
    """Every TIERDESK_* variable compose sets is a field of webhooks.settings.Settings."""
    for name, service in tierdesk_services().items():
        names = {k for k in service["environment"] if k.startswith("TIERDESK_")}
        assert names <= SETTING_NAMES, (name, names - SETTING_NAMES)


def test_policy_is_mounted_read_only_at_tierdesk_policy() -> None:
    """Each replica bind-mounts ./policy.yaml read-only at the path TIERDESK_POLICY names."""
    for name, service in tierdesk_services().items():
        policy = service["environment"]["TIERDESK_POLICY"]
        assert policy == final_env()["TIERDESK_POLICY"]
        mounts = [v for v in service["volumes"] if v["target"] == policy]
        assert len(mounts) == 1, name
        assert mounts[0]["type"] == "bind" and mounts[0]["read_only"] is True
        assert mounts[0]["source"] == "./policy.yaml"


def test_replicas_stop_gracefully_and_are_confined(live_server: LiveServer) -> None:
    """stop_grace_period outlasts uvicorn's graceful shutdown; read-only root, no capabilities."""
    for name, service in tierdesk_services().items():
        grace = int(str(service["stop_grace_period"]).rstrip("s"))
        assert grace > live_server.graceful_seconds, name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["restart"] == "unless-stopped"


def test_workers_disable_the_http_healthcheck() -> None:
    """Workers serve no HTTP, so the image's /healthz HEALTHCHECK is switched off for them."""
    for name in by_command("worker", "--metrics-port", "9108"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}
        assert SERVICES[name]["expose"] == ["9108"]
    for name in by_command("serve", "--no-worker"):
        assert "healthcheck" not in SERVICES[name], "receivers keep the image's /healthz check"
