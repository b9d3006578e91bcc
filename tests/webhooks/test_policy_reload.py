"""Policy reload in the running service: a valid new policy is taken up between tickets, a bad
one is refused with its errors and the old one keeps running (SIGHUP or file change)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.webhooks.fakes import FakeConnector
from tests.webhooks.test_processes import REPO, free_port, service_env, wait_healthy
from webhooks.defaults import default_policy_text
from webhooks.service import build_service
from webhooks.settings import load_settings

EXAMPLE = default_policy_text()


def _service(tmp_path: Path, policy: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(policy=policy, database_url=f"sqlite:///{tmp_path}/inbox.db")
    return build_service(settings, with_worker=True, connectors={"jira": FakeConnector()})


def test_valid_change_is_taken_up_by_every_worker(tmp_path: Path) -> None:
    """After the file changes, each worker decides with the new policy from its next ticket."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXAMPLE, encoding="utf-8")
    service = _service(tmp_path, policy)
    try:
        assert service.watcher is not None and service.pool is not None
        old = service.policy.digest
        policy.write_text(EXAMPLE.replace("default_tier: L1", "default_tier: L0"), "utf-8")
        result = service.watcher.check()
        assert result is not None and result.changed and not result.errors
        assert service.policy.digest != old
        for worker in service.pool.workers:
            worker.run_once()  # between tickets: the swap happens here
            assert worker.policy.digest == service.policy.digest
            assert worker.policy.default_tier == "L0"
    finally:
        service.inbox.close()


def test_bad_change_is_refused_and_the_old_policy_keeps_running(tmp_path: Path) -> None:
    """A policy with errors is refused with file, key path and reason; nothing is swapped."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXAMPLE, encoding="utf-8")
    service = _service(tmp_path, policy)
    try:
        assert service.watcher is not None and service.pool is not None
        old = service.policy.digest
        policy.write_text(EXAMPLE.replace("group_id: 300", 'group_id: "three"'), "utf-8")
        result = service.watcher.check()
        assert result is not None and not result.changed
        assert any(
            f'{policy}: targets.L3.zendesk.group_id: expected an integer, got "three"' in e
            for e in result.errors
        ), result.errors
        for worker in service.pool.workers:
            worker.run_once()
            assert worker.policy.digest == old
        assert service.policy.digest == old
    finally:
        service.inbox.close()


def test_embedded_policy_has_no_watcher(tmp_path: Path) -> None:
    """Without TIERDESK_POLICY the embedded example is used and there is nothing to watch."""
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/inbox.db")
    service = build_service(settings, with_worker=False)
    try:
        assert service.watcher is None
    finally:
        service.inbox.close()


@pytest.mark.slow
def test_sighup_reloads_the_running_server(tmp_path: Path) -> None:
    """`kill -HUP` on `tierdesk serve`: a bad policy is refused and logged, the server keeps
    running, a good one is reloaded, and SIGTERM still stops it cleanly."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXAMPLE, encoding="utf-8")
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path}/inbox.db", port, TIERDESK_POLICY=str(policy),
                      TIERDESK_LOG_LEVEL="INFO")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.webhooks.service_launcher", "serve",
             str(tmp_path / "vendor.db"), "--no-worker"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(port, proc)

            def hup_and_wait(marker: str) -> None:
                os.kill(proc.pid, signal.SIGHUP)
                deadline = time.monotonic() + 20
                while marker not in log.read_text("utf-8", "replace"):
                    assert proc.poll() is None, "the server died on SIGHUP"
                    assert time.monotonic() < deadline, f"no {marker!r} in the log"
                    time.sleep(0.1)

            policy.write_text(EXAMPLE.replace("max_tier: L1\n", "max_tier: L9\n", 1), "utf-8")
            hup_and_wait("policy reload refused")
            assert 'unknown tier \\"L9\\"' in log.read_text("utf-8") or \
                'unknown tier "L9"' in log.read_text("utf-8")
            policy.write_text(EXAMPLE.replace("default_tier: L1", "default_tier: L0"), "utf-8")
            hup_and_wait("policy reloaded")
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
