"""The worker threads of one process (`serve` and `worker`), with retention, the SLA timer loop
and the SLA notify sender beside them, stopped together."""

from __future__ import annotations

import threading
import time

from webhooks.notify import NotifySender
from webhooks.retention import Pruner
from webhooks.sla_work import TimerLoop
from webhooks.worker import Worker


class WorkerPool:
    """Several worker threads in one process, stopped together (for `serve` and `worker`)."""

    def __init__(
        self, workers: list[Worker], *, pruner: Pruner | None = None,
        timers: TimerLoop | None = None,
    ) -> None:
        self.workers = workers
        #: Retention housekeeping run beside the workers (webhooks/retention.py), if any.
        self.pruner = pruner
        #: The SLA timer loop (webhooks/sla_work.py): one per process, if any.
        self.timers = timers
        #: The SLA notify sender (webhooks/notify.py): sends the outbox's notices, if any.
        self.notify: NotifySender | None = None
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for w in self.workers:
            t = threading.Thread(target=w.run, args=(self.stop_event,), name=w.name, daemon=True)
            t.start()
            self._threads.append(t)
        if self.pruner is not None:
            t = threading.Thread(target=self.pruner.run, args=(self.stop_event,),
                                 name="tierdesk-prune", daemon=True)
            t.start()
            self._threads.append(t)
        if self.timers is not None:
            t = threading.Thread(target=self.timers.run, args=(self.stop_event,),
                                 name="tierdesk-sla-timers", daemon=True)
            t.start()
            self._threads.append(t)
        if self.notify is not None:
            t = threading.Thread(target=self.notify.run, args=(self.stop_event,),
                                 name="tierdesk-sla-notify", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        for w in self.workers:
            w.wake()

    def stop(self, *, timeout: float = 60.0) -> None:
        """Ask every worker to stop after the ticket in hand, and wait for them."""
        self.stop_event.set()
        self.wake()
        if self.timers is not None:
            self.timers.stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
