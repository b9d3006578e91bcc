"""Policy reload without restart: on SIGHUP or when the policy file changes, validate the new
policy and swap it in; a bad one is refused with its errors and the old one keeps running.

    holder = PolicyHolder(settings.policy, policy)     # the policy loaded at start
    holder.subscribe(use)                              # called with each new Policy
    watcher = PolicyWatcher(holder, interval=2.0)      # polls the file; SIGHUP wakes it at once
    watcher.install_sighup()                           # main thread only
    watcher.start() ... watcher.stop()

Nothing reads the policy from the holder: each new policy is pushed to the subscribers. The
service's (webhooks/service.py) hands it, with connectors rebuilt for it, to every worker
(`Worker.swap`), which takes it up before its next ticket, so a decision never mixes two
policies; `holder.current` is the policy in force, for a caller that asks. The swap is one
reference assignment under a lock. A reload that fails for any reason (unreadable file,
invalid YAML, a policy error) changes nothing: the errors are logged with the file, key path
and line, exactly as `tierdesk policy check` prints them, and kept in `holder.last_error`.

The file is compared by content (sha256), not only by modification time: editors that save by
rename, ConfigMap updates (a symlink swap) and `touch` are all handled, and re-saving identical
text reloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tiering.policy import Policy, PolicyError, load_policy, policy_digest
from tiering.policy_yaml import MAX_POLICY_BYTES
from webhooks.defaults import read_named_files, read_policy_file
from webhooks.logging import log


@dataclass(frozen=True)
class ReloadResult:
    """What one reload attempt did: `changed` (a new policy is in force), or `errors`."""

    changed: bool
    digest: str
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


class PolicyHolder:
    """The policy in force, replaced only by a policy that loaded without error."""

    def __init__(self, path: Path | None, policy: Policy) -> None:
        #: None: the embedded example policy, which never changes (reload is a no-op).
        self.path = path
        self._policy = policy
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Policy], None]] = []
        #: The errors of the last refused reload (empty once a reload succeeds).
        self.last_error: tuple[str, ...] = ()

    @property
    def current(self) -> Policy:
        """The policy in force."""
        return self._policy

    def subscribe(self, callback: Callable[[Policy], None]) -> None:
        """Call `callback(new_policy)` after each successful swap (e.g. rebuild connectors)."""
        self._subscribers.append(callback)

    def reload(self) -> ReloadResult:
        """Read and validate the policy file; swap it in if it is valid and different."""
        with self._lock:
            old = self._policy
            if self.path is None:
                return ReloadResult(changed=False, digest=old.digest)
            try:
                # At most MAX_POLICY_BYTES are read: a huge file cannot fill the memory.
                text = read_policy_file(self.path)
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                return self._refuse(old, (f"{self.path}: cannot read: {reason}",))
            except PolicyError as exc:
                return self._refuse(old, tuple(exc.lines))
            # The ICS files its calendars name, relative to it (webhooks/defaults.py).
            files, unreadable = read_named_files(self.path, text)
            digest = policy_digest(text, files)
            if digest == old.digest and not unreadable:
                self.last_error = ()
                return ReloadResult(changed=False, digest=digest)
            try:
                new = load_policy(text, source=str(self.path), files=files,
                                  unreadable=unreadable)
            except PolicyError as exc:
                return self._refuse(old, tuple(exc.lines))
            self._policy = new
            self.last_error = ()
        log("policy reloaded", source=new.source, digest=new.digest[:12],
            previous=old.digest[:12])
        for callback in self._subscribers:
            try:
                callback(new)
            except Exception as exc:  # one bad subscriber must not stop the others
                log("policy reload subscriber failed", level=40, error=repr(exc)[:300])
        return ReloadResult(changed=True, digest=new.digest)

    def _refuse(self, old: Policy, errors: tuple[str, ...]) -> ReloadResult:
        self.last_error = errors
        log("policy reload refused: the previous policy stays in force", level=40,
            source=str(self.path), digest=old.digest[:12], errors=list(errors))
        return ReloadResult(changed=False, digest=old.digest, errors=errors)


class PolicyWatcher:
    """A thread that reloads the holder's policy when its file's content changes (checked every
    `interval` seconds) and at once on `request()` (what the SIGHUP handler calls)."""

    def __init__(self, holder: PolicyHolder, *, interval: float = 2.0) -> None:
        self.holder = holder
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seen = self._fingerprint()
        self._thread = threading.Thread(target=self._run, name="tierdesk-policy", daemon=True)

    def _fingerprint(self) -> str | None:
        path = self.holder.path
        if path is None:
            return None
        try:
            # Bounded like the reload itself: a file over the policy size limit is told apart by
            # its size and times, never read whole every `interval` seconds.
            with path.open("rb") as handle:
                head = handle.read(MAX_POLICY_BYTES + 1)
                if len(head) > MAX_POLICY_BYTES:
                    info = os.fstat(handle.fileno())
                    return f"over-limit:{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"
            sha = hashlib.sha256(head)
        except OSError:
            return None
        # The ICS files the policy in force names: by size and times (a changed holiday file
        # reloads the policy too).
        for calendar in self.holder.current.doc.calendars.values():
            ics = calendar.holidays.ics
            if ics is None:
                continue
            try:
                info = os.stat(path.parent / ics)
            except OSError:
                sha.update(f"\0{ics}:missing".encode())
                continue
            sha.update(f"\0{ics}:{info.st_size}:{info.st_mtime_ns}:{info.st_ino}".encode())
        return sha.hexdigest()

    def request(self) -> None:
        """Ask for a reload now (safe from a signal handler: it only sets an event)."""
        self._wake.set()

    def install_sighup(self) -> None:
        """Reload on SIGHUP (`systemctl reload`, `kill -HUP`). Call from the main thread."""

        def _on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.request()

        signal.signal(signal.SIGHUP, _on_hup)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self, *, force: bool = False) -> ReloadResult | None:
        """One poll: reload if the file's content changed (or `force`); None if nothing to do."""
        seen = self._fingerprint()
        if not force and seen == self._seen:
            return None
        self._seen = seen
        return self.holder.reload()

    def _run(self) -> None:
        while not self._stop.is_set():
            forced = self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self.check(force=forced)
            except Exception as exc:  # never let the watcher die: the service keeps running
                log("policy watcher failed", level=40, error=repr(exc)[:300])
