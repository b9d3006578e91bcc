"""webhooks/reload.py: a new valid policy is swapped in on file change or SIGHUP; a bad one is
refused with the errors `tierdesk policy check` prints, and the old one stays in force."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import pytest

from tiering.policy import Policy, PolicyError, load_policy
from webhooks.reload import PolicyHolder, PolicyWatcher

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
TEXT = EXAMPLE.read_text(encoding="utf-8")
#: The example with one more plan: valid, different.
CHANGED = TEXT.replace("plans:\n", "plans:\n  gold:\n    max_tier: L3\n", 1)
#: The example with an unknown tier as default: invalid in meaning.
BAD_TIER = TEXT.replace("default_tier: L1", "default_tier: L9", 1)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def holder(policy_file: Path) -> PolicyHolder:
    return PolicyHolder(policy_file, load_policy(TEXT, source=str(policy_file)))


def test_a_valid_change_is_swapped_in_and_announced(holder: PolicyHolder, policy_file: Path
                                                    ) -> None:
    """A valid new policy becomes `current` and every subscriber receives it."""
    seen: list[Policy] = []
    holder.subscribe(seen.append)
    old = holder.current
    policy_file.write_text(CHANGED, encoding="utf-8")
    result = holder.reload()
    assert result.changed and result.ok
    assert holder.current is not old and "gold" in holder.current.plans
    assert seen == [holder.current]
    assert result.digest == holder.current.digest


def test_invalid_yaml_is_refused_and_the_old_policy_stays(
    holder: PolicyHolder, policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Broken YAML: refused with the file and line, old policy in force, the refusal logged."""
    caplog.set_level(logging.INFO, logger="tierdesk")
    seen: list[Policy] = []
    holder.subscribe(seen.append)
    old = holder.current
    policy_file.write_text(TEXT + "\nrules: [unclosed\n", encoding="utf-8")
    result = holder.reload()
    assert not result.ok and not result.changed
    assert holder.current is old and seen == []
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{policy_file}: not valid YAML")
    assert "(line " in result.errors[0]
    assert holder.last_error == result.errors
    refusals = [r for r in caplog.records if r.getMessage().startswith("policy reload refused")]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR


def test_refusal_lists_the_same_errors_as_policy_check(holder: PolicyHolder, policy_file: Path
                                                       ) -> None:
    """A policy error is reported line for line as load_policy (and `policy check`) reports it."""
    policy_file.write_text(BAD_TIER, encoding="utf-8")
    with pytest.raises(PolicyError) as expected:
        load_policy(BAD_TIER, source=str(policy_file))
    result = holder.reload()
    assert result.errors == tuple(expected.value.lines)
    assert any("default_tier" in line and "L9" in line for line in result.errors)


def test_a_fixed_file_after_a_refusal_is_taken(holder: PolicyHolder, policy_file: Path) -> None:
    """After a refused reload, saving a valid file reloads it and clears the error."""
    policy_file.write_text(BAD_TIER, encoding="utf-8")
    assert not holder.reload().ok
    policy_file.write_text(CHANGED, encoding="utf-8")
    result = holder.reload()
    assert result.changed and holder.last_error == ()
    assert "gold" in holder.current.plans


def test_a_missing_file_is_refused(holder: PolicyHolder, policy_file: Path) -> None:
    """A deleted policy file (e.g. mid-deploy) keeps the running policy and says why."""
    old = holder.current
    policy_file.unlink()
    result = holder.reload()
    assert holder.current is old
    assert result.errors and "cannot read" in result.errors[0]


def test_identical_content_changes_nothing(holder: PolicyHolder, policy_file: Path) -> None:
    """Re-saving the same text (or `touch`) reloads nothing and notifies nobody."""
    seen: list[Policy] = []
    holder.subscribe(seen.append)
    old = holder.current
    policy_file.write_text(TEXT, encoding="utf-8")
    result = holder.reload()
    assert not result.changed and result.ok and holder.current is old and seen == []


def test_embedded_policy_never_reloads() -> None:
    """With no TIERDESK_POLICY (the embedded example), reload is a no-op."""
    policy = load_policy(TEXT)
    holder = PolicyHolder(None, policy)
    result = holder.reload()
    assert not result.changed and result.ok and holder.current is policy


def test_a_failing_subscriber_does_not_undo_the_swap(holder: PolicyHolder, policy_file: Path
                                                     ) -> None:
    """A subscriber that raises is logged; the others still run and the new policy stays."""
    seen: list[Policy] = []

    def broken(_p: Policy) -> None:
        raise RuntimeError("connector rebuild failed")

    holder.subscribe(broken)
    holder.subscribe(seen.append)
    policy_file.write_text(CHANGED, encoding="utf-8")
    assert holder.reload().changed
    assert seen == [holder.current] and "gold" in holder.current.plans


def test_watcher_check_reloads_only_on_content_change(holder: PolicyHolder, policy_file: Path
                                                      ) -> None:
    """check() does nothing while the content is the same, and reloads once it changes."""
    watcher = PolicyWatcher(holder, interval=60)
    assert watcher.check() is None
    policy_file.write_text(CHANGED, encoding="utf-8")
    result = watcher.check()
    assert result is not None and result.changed
    assert watcher.check() is None


def test_watcher_thread_picks_up_a_saved_file(holder: PolicyHolder, policy_file: Path) -> None:
    """The polling thread notices a rename-style save (new inode) and swaps the policy."""
    swapped = threading.Event()
    holder.subscribe(lambda _p: swapped.set())
    watcher = PolicyWatcher(holder, interval=0.05)
    watcher.start()
    try:
        tmp = policy_file.with_suffix(".tmp")
        tmp.write_text(CHANGED, encoding="utf-8")
        os.replace(tmp, policy_file)
        assert swapped.wait(10), "the watcher did not reload the changed file"
    finally:
        watcher.stop()
    assert "gold" in holder.current.plans


def test_sighup_reloads_at_once(holder: PolicyHolder, policy_file: Path) -> None:
    """SIGHUP makes the watcher reload now, without waiting for the next poll."""
    swapped = threading.Event()
    holder.subscribe(lambda _p: swapped.set())
    watcher = PolicyWatcher(holder, interval=3600)
    previous = signal.getsignal(signal.SIGHUP)
    watcher.install_sighup()
    watcher.start()
    try:
        policy_file.write_text(CHANGED, encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        assert swapped.wait(10), "SIGHUP did not trigger a reload"
    finally:
        watcher.stop()
        signal.signal(signal.SIGHUP, previous)
    assert "gold" in holder.current.plans


def test_sighup_with_a_bad_file_keeps_the_old_policy(holder: PolicyHolder, policy_file: Path
                                                     ) -> None:
    """SIGHUP with an invalid file: refused, the running policy unchanged, the error kept."""
    old = holder.current
    watcher = PolicyWatcher(holder, interval=3600)
    previous = signal.getsignal(signal.SIGHUP)
    watcher.install_sighup()
    watcher.start()
    try:
        policy_file.write_text(BAD_TIER, encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if holder.last_error:
                break
            threading.Event().wait(0.05)
    finally:
        watcher.stop()
        signal.signal(signal.SIGHUP, previous)
    assert holder.current is old
    assert any("default_tier" in line for line in holder.last_error)
