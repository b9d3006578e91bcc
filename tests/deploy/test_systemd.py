"""deploy/systemd/tierdesk.service: a hardened single-host unit: `tierdesk serve` on SQLite."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from tests.deploy.cli_check import parse_cli
from tests.deploy.conftest import LiveServer
from tests.deploy.deployfiles import DEPLOY, SETTING_NAMES, unit_file

UNIT_PATH = DEPLOY / "systemd" / "tierdesk.service"
UNIT = unit_file(UNIT_PATH)
SERVICE = UNIT["Service"]


def values(key: str) -> list[str]:
    return [v for k, v in SERVICE if k == key]


def value(key: str) -> str:
    (v,) = values(key)
    return v


def environment() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in values("Environment"):
        for word in shlex.split(line):
            name, _, v = word.partition("=")
            out[name] = v
    return out


def test_runs_tierdesk_serve_with_the_embedded_worker() -> None:
    """ExecStart is the venv's `tierdesk serve` (receiver and worker in one process)."""
    argv = shlex.split(value("ExecStart"))
    assert argv[0] == "/opt/tierdesk/bin/tierdesk"
    assert parse_cli(["tierdesk", *argv[1:]]) == ["serve"]
    assert "--no-worker" not in argv, "one host runs its own worker"


def test_runs_as_a_service_user_not_root() -> None:
    """User and Group are a dedicated account."""
    assert value("User") == value("Group") == "tierdesk"


def test_inbox_is_sqlite_in_the_state_directory() -> None:
    """The inbox is a SQLite file under /var/lib/<StateDirectory>, the one writable place."""
    env = environment()
    assert set(env) <= SETTING_NAMES, set(env) - SETTING_NAMES
    url = env["TIERDESK_DATABASE_URL"]
    assert url.startswith("sqlite:////")
    path = url[len("sqlite:///"):]
    assert path.startswith(f"/var/lib/{value('StateDirectory')}/")
    assert value("WorkingDirectory") == f"/var/lib/{value('StateDirectory')}"


def test_policy_and_secrets_come_from_etc() -> None:
    """TIERDESK_POLICY is in /etc/tierdesk, next to the EnvironmentFile holding the secrets."""
    env = environment()
    assert env["TIERDESK_POLICY"] == "/etc/tierdesk/policy.yaml"
    assert value("EnvironmentFile") == "/etc/tierdesk/tierdesk.env"
    secret_words = ("TOKEN", "SECRET", "PAT")
    assert not any(w in k for k in env for w in secret_words), "secrets go in the file"


def test_listens_on_loopback_behind_a_reverse_proxy() -> None:
    """A single host serves on 127.0.0.1 by default: TLS comes from the reverse proxy in front."""
    assert environment()["TIERDESK_HOST"] == "127.0.0.1"
    assert environment()["TIERDESK_PORT"].isdigit()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("SystemCallArchitectures", "native"),
    ],
)
def test_hardening(key: str, expected: str) -> None:
    """Each hardening directive of systemd.exec(5) is set as a single-host service needs it."""
    assert value(key) == expected


def test_system_calls_are_filtered() -> None:
    """SystemCallFilter allows @system-service and denies @privileged."""
    assert values("SystemCallFilter") == ["@system-service", "~@privileged"]


def test_stop_outlasts_graceful_shutdown(live_server: LiveServer) -> None:
    """SIGTERM, and TimeoutStopSec longer than uvicorn's graceful shutdown."""
    assert value("KillSignal") == "SIGTERM"
    assert int(value("TimeoutStopSec")) > live_server.graceful_seconds


def test_startup_errors_are_not_restarted_forever() -> None:
    """Restart on failure, except exit status 2, which `tierdesk serve` uses for bad settings."""
    assert value("Restart") == "on-failure"
    assert value("RestartPreventExitStatus") == "2"


def test_installs_into_multi_user_target() -> None:
    """`systemctl enable` hooks it into multi-user.target, after the network is up."""
    assert UNIT["Install"] == [("WantedBy", "multi-user.target")]
    assert ("After", "network-online.target") in UNIT["Unit"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_finds_nothing_but_the_missing_install() -> None:
    """`systemd-analyze verify` accepts every directive; its only complaint here is that
    /opt/tierdesk/bin/tierdesk is not installed on the test machine."""
    done = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT_PATH)], capture_output=True, text=True, timeout=60
    )
    complaints = [
        line for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "/opt/tierdesk/bin/tierdesk" not in line
    ]
    assert complaints == []
