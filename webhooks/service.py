"""The service assembled from settings: `build_service` (policy, inbox, metrics, workers),
`build_server` (the receiver under uvicorn), and `run_server` / `run_worker` that run them.

`tierdesk serve` and `tierdesk worker` (webhooks/cli/service.py) call these; the tests start the
real service through them too.
"""

from __future__ import annotations

import errno
import resource
import signal
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import uvicorn
from prometheus_client import start_http_server

from connectors.base import VENDORS, Connector, Vendor
from connectors.http import session_on
from connectors.retry import RetryStrategy
from connectors.vendor_limit import VendorLimit
from tiering.policy import Policy, PolicyError, load_policy
from webhooks.app import ReceiverConfig, create_app
from webhooks.commit import WriterProcess
from webhooks.defaults import (
    EXAMPLE_POLICY_SOURCE,
    default_policy_text,
    read_named_files,
    read_policy_file,
)
from webhooks.inbox.database import InboxError
from webhooks.inbox.opening import InboxUnavailable, open_inbox
from webhooks.inbox.store import Inbox
from webhooks.limits import bounded_protocol, connection_cap
from webhooks.logging import LogThrottle, log
from webhooks.loops import LoopGuard
from webhooks.metrics import Metrics
from webhooks.notify import NotifyConfigError, NotifySecrets, NotifySender
from webhooks.pool import WorkerPool
from webhooks.reload import PolicyHolder, PolicyWatcher
from webhooks.retention import Pruner
from webhooks.settings import CONFIGURE_A_VENDOR, Settings
from webhooks.sla_work import TimerLoop, recompute_timers
from webhooks.worker import Worker


class ServiceError(RuntimeError):
    """A part of the service cannot be set up (the policy, a connector); the message says what
    to fix."""


def load_policy_for(settings: Settings) -> Policy:
    """The policy named by TIERDESK_POLICY, else the embedded example (the one fallback);
    ServiceError lists every problem, each naming the file and key."""
    files: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    if settings.policy is None:
        text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    else:
        path = settings.policy
        try:
            text = read_policy_file(path)  # at most MAX_POLICY_BYTES are read
        except OSError as exc:
            raise ServiceError(
                f"TIERDESK_POLICY: cannot read {path}: {exc.strerror or exc}"
            ) from None
        except PolicyError as exc:
            raise ServiceError(str(exc)) from None
        source = str(path)
        # The calendars' ICS files, relative to the policy file (webhooks/defaults.py).
        files, unreadable = read_named_files(path, text)
    try:
        return load_policy(text, source=source, files=files, unreadable=unreadable)
    except PolicyError as exc:
        raise ServiceError(str(exc)) from None


def vendor_limits(settings: Settings, inbox: Inbox) -> dict[str, VendorLimit]:
    """Each vendor's one rate-limit owner for this process (connectors/vendor_limit.py): at most
    TIERDESK_VENDOR_CONCURRENCY requests in flight, none while the vendor asked to wait, every
    pause recorded in the inbox for the other processes and theirs taken up. Build once and
    keep across policy reloads: a pause must outlive the connectors that saw it."""
    return {
        name: VendorLimit(name, concurrency=settings.vendor_concurrency,
                          default_pause=vendor.default_pause, record=inbox, clock=inbox.clock)
        for name, vendor in VENDORS.items()
    }


def build_connectors(
    settings: Settings, policy: Policy, *, limits: Mapping[str, VendorLimit] | None = None
) -> dict[str, Connector]:
    """A connector for each vendor configured in `settings` (none configured: empty). With
    `limits`, every request a connector sends asks its vendor's limit first."""
    out: dict[str, Connector] = {}
    for name, vendor in VENDORS.items():
        config = settings.connector_config(name)
        if config is None:
            continue
        session = session_on(limits[name]) if limits else None
        try:
            out[name] = vendor.connector(config, policy, session=session)
        except ValueError as exc:
            raise ServiceError(f"cannot use {name.capitalize()}: {exc}") from None
    return out


class StartupError(RuntimeError):
    """The service cannot start; `lines` say what to fix."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Service:
    """Everything `serve` and `worker` run: the policy, the inbox, metrics and the workers."""

    policy: Policy
    inbox: Inbox
    metrics: Metrics
    pool: WorkerPool | None
    #: Reloads TIERDESK_POLICY on SIGHUP or when the file changes (None: embedded policy).
    watcher: PolicyWatcher | None = None

    def policy_loaded(self) -> bool:
        """True while a policy is in force (/readyz): build_service refuses to start without
        one, and a refused reload keeps the old one."""
        return self.policy is not None

    def start_watching(self) -> None:
        """Reload on SIGHUP and on file change (call from the main thread)."""
        if self.watcher is not None:
            self.watcher.install_sighup()
            self.watcher.start()

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()


def build_service(
    settings: Settings,
    *,
    with_worker: bool,
    connectors: Mapping[str, Connector] | None = None,
    create_inbox: bool = True,
) -> Service:
    """Load the policy, open the inbox and build the worker pool. `connectors` replaces the
    ones built from the settings (tests start the real service with a test connector).
    `create_inbox=False` (`worker --once`) refuses a database that does not exist yet."""
    try:
        policy = load_policy_for(settings)
    except ServiceError as exc:
        raise StartupError(
            ["cannot load the policy:", *(f"  {line}" for line in str(exc).splitlines())]
        ) from None
    try:
        # A notify webhook that cannot be signed stops a worker's start-up (webhooks/notify.py).
        secrets = NotifySecrets.from_settings(policy, settings) if with_worker else NotifySecrets()
    except NotifyConfigError as exc:
        raise StartupError(["cannot send SLA notifications:", *(
            f"  {line}" for line in str(exc).splitlines())]) from None
    try:
        inbox = open_inbox(settings.database_url, create=create_inbox)
    except InboxUnavailable as exc:
        raise StartupError(exc.lines) from None
    metrics = Metrics()
    metrics.watch_inbox(inbox.depth, vendors=settings.configured_vendors())
    pool = None
    limits = vendor_limits(settings, inbox)  # one per vendor and process, kept across reloads
    if with_worker:
        if connectors is None:
            try:
                connectors = build_connectors(settings, policy, limits=limits)
            except ServiceError as exc:
                raise StartupError([str(exc)]) from None
        if not connectors:
            log("no vendor is configured: events are stored but not processed"
                f" ({CONFIGURE_A_VENDOR})", level=30)
        throttle = LogThrottle(inbox.clock)  # a repeated warning is said once per process
        pool = None if not connectors else WorkerPool([
            Worker(
                inbox=inbox,
                connectors=connectors,
                policy=policy,
                max_attempts=settings.max_attempts,
                lease_seconds=settings.lease_seconds,
                retry_max_delay=settings.retry_max_delay,
                metrics=metrics,
                name=f"worker-{i + 1}",
                limits=limits,  # shared: a 429 seen by any thread stops every thread at once
                throttle=throttle,
                loop_guard=LoopGuard(max_rewrites=settings.loop_max_rewrites,
                                     window=settings.loop_window_minutes * 60),
            )
            for i in range(settings.worker_threads)
        ], pruner=Pruner(inbox, days=settings.retention_days) if settings.retention_days else None)
        if pool is not None:
            pool.timers = TimerLoop(inbox, wake_workers=pool.wake)
            pool.notify = NotifySender(inbox, secrets, timeout=settings.http_timeout,
                                       max_attempts=settings.max_attempts,
                                       strategy=RetryStrategy(maximum=settings.retry_max_delay))
    metrics.watch_clocks(inbox.open_clock_count)
    if pool is not None:
        metrics.serve_sla(connectors or {})
    log("policy loaded", source=policy.source, digest=policy.digest[:12])
    service = Service(policy=policy, inbox=inbox, metrics=metrics, pool=pool)
    if settings.policy is not None:
        holder = PolicyHolder(Path(settings.policy), policy)
        injected = connectors if connectors is not None and pool is not None else None

        def use(new: Policy) -> None:
            service.policy = new
            if pool is None:
                return
            # Connectors carry the policy's field mapping: rebuild them for the new policy
            # (a test's injected connectors are kept as they are).
            fresh = (injected if injected is not None
                     else build_connectors(settings, new, limits=limits))
            for worker in pool.workers:
                worker.swap(new, fresh)
            if pool.notify is not None:
                try:
                    pool.notify.secrets = NotifySecrets.from_settings(new, settings)
                except NotifyConfigError as exc:  # rows for such a URL wait, saying why
                    log("sla notify secrets kept from the previous policy", level=40,
                        error=str(exc)[:500])
            # Every open SLA timer is recomputed under the new targets and calendars.
            threading.Thread(target=_recompute_timers, args=(inbox, new),
                             name="tierdesk-sla-recompute", daemon=True).start()

        holder.subscribe(use)
        service.watcher = PolicyWatcher(holder)
    return service


def _recompute_timers(inbox: Inbox, policy: Policy) -> None:
    try:
        changed = recompute_timers(inbox, policy, now=datetime.now(UTC))
    except Exception as exc:
        log("sla timers not recomputed after the reload", level=40, error=repr(exc)[:300])
        return
    log("sla timers recomputed after the reload", changed=changed, digest=policy.digest[:12])


def build_server(
    settings: Settings,
    *,
    with_worker: bool = True,
    connectors: Mapping[str, Connector] | None = None,
    vendors: Mapping[str, Vendor] | None = None,
    host: str | None = None,
    port: int | None = None,
) -> tuple[uvicorn.Server, Service]:
    """The uvicorn server of `tierdesk serve` (receiver, plus the worker pool unless
    `with_worker` is false). Run it with `.run()`; SIGTERM/SIGINT stop it gracefully."""
    service = build_service(settings, with_worker=with_worker, connectors=connectors)
    secrets = {v: settings.webhook_secret(v) for v in VENDORS}
    configured = settings.configured_vendors()
    for vendor in configured:
        service.metrics.vendor_configured.labels(vendor).set(1)
    for vendor in configured:  # an unconfigured vendor's deliveries are not expected at all
        if not secrets[vendor] and settings.webhook_basic_auth(vendor) is None:
            log(f"no {vendor} webhook secret: every {vendor} delivery is refused (401); set"
                f" TIERDESK_{vendor.upper()}_WEBHOOK_SECRET", level=30, vendor=vendor)
        if settings.previous_webhook_secret(vendor):
            log(f"{vendor} webhook secret rotation in progress: deliveries signed with the"
                f" previous secret are accepted until TIERDESK_{vendor.upper()}_WEBHOOK_SECRET_"
                "PREVIOUS is unset", level=30, vendor=vendor)
    pool = service.pool
    committer = None
    if settings.inbox_writer == "process":
        async def committer() -> WriterProcess:
            writer = WriterProcess(settings.database_url, log_level=settings.log_level)
            try:
                await writer.start()
            except InboxError as exc:
                log("cannot start the inbox writer process; not serving (where child processes"
                    " are not allowed, set TIERDESK_INBOX_WRITER=thread)", level=50,
                    error=str(exc))
                raise
            return writer

    app = create_app(
        inbox=service.inbox,
        config=ReceiverConfig(
            secrets=secrets,
            vendors=VENDORS if vendors is None else vendors,
            max_body_bytes=settings.max_body_bytes,
            signature_max_age=settings.signature_max_age,
            replay_horizon=settings.webhook_replay_horizon(),
            previous_secrets={v: settings.previous_webhook_secret(v) for v in VENDORS},
            basic_auth={v: settings.webhook_basic_auth(v) for v in VENDORS},
            # A vendor protected by the Basic opt-in alone needs no secret to be ready.
            required_secrets=[v for v in configured if settings.webhook_basic_auth(v) is None],
        ),
        metrics=service.metrics,
        on_enqueued=pool.wake if pool else None,
        on_startup=pool.start if pool else None,
        on_shutdown=pool.stop if pool else None,
        committer=committer,
        policy_loaded=service.policy_loaded,
    )
    nofile_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    max_connections = connection_cap(
        settings.max_connections,
        nofile_soft=nofile_soft if nofile_soft != resource.RLIM_INFINITY else 1 << 20)
    if max_connections < settings.max_connections:
        log("connection limit lowered to fit the file-descriptor limit", level=30,
            max_connections=max_connections, nofile=nofile_soft)
    config = uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        lifespan="on",
        # uvicorn's httptools protocol plus the header and body deadlines, the header size limit
        # and the connection cap it lacks (webhooks/limits.py says what uvicorn bounds itself).
        http=bounded_protocol(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_header_bytes=settings.max_header_bytes,
            max_connections=max_connections,
        ),
    )
    return uvicorn.Server(config), service


# Exit statuses of `serve` and `worker` (the admin guide's "Exit codes"): 0 after SIGTERM/SIGINT,
# 2 from `_fail` when start-up fails (before any work), 3 from uvicorn (its STARTUP_FAILURE) when
# the app's start-up fails after the bind: the inbox writer process cannot start.


def _port_problem(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "is already in use by another process"
    return f"cannot be bound ({exc.strerror or exc})"


def bind_port(host: str, port: int, *, change: str) -> socket.socket:
    """Bind `host:port` before any work starts, so a busy port stops start-up with one line
    naming the port and `change` (the setting or flag to use another), not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError([
            f"port {port} on {host} {_port_problem(exc)}: stop that process, or choose another"
            f" port with {change}"
        ]) from None
    sock.set_inheritable(True)
    return sock


def run_server(
    server: uvicorn.Server, service: Service, *, sockets: list[socket.socket] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully and return (exit status 0).

    uvicorn stops accepting, finishes in-flight requests, runs the app's shutdown (commit what
    is queued; workers finish the ticket in hand), then re-raises the signal it captured. The
    handler installed here receives that re-raise and only asks the server to exit, so a
    graceful stop ends normally; before uvicorn installs its own handlers it stops start-up."""

    def _exit(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    service.start_watching()
    try:
        server.run(sockets=sockets)
    finally:
        service.stop_watching()
        service.inbox.close()
    log("stopped")


def run_worker(
    settings: Settings,
    *,
    once: bool = False,
    connectors: Mapping[str, Connector] | None = None,
    metrics_port: int | None = None,
) -> int:
    """Run the worker pool until SIGTERM/SIGINT (or, with `once`, until nothing is ready);
    return the number of tickets processed by `once`. `metrics_port` serves the worker's
    Prometheus metrics on 0.0.0.0:PORT/ (split deployments have no receiver in this process)."""
    # Draining a database that does not exist is a wrong directory, not "0 tickets".
    service = build_service(settings, with_worker=True, connectors=connectors,
                            create_inbox=not once)
    pool = service.pool
    if metrics_port is not None and not once:
        try:
            start_http_server(metrics_port, registry=service.metrics.registry)
        except OSError as exc:
            service.inbox.close()
            raise StartupError([
                f"port {metrics_port} (worker metrics) {_port_problem(exc)}: stop that process,"
                " or choose another port with --metrics-port"
            ]) from None
        log("worker metrics served", port=metrics_port)
    try:
        if pool is None:
            if once:
                return 0
            raise StartupError([
                f"no vendor is configured, so the worker has nothing to do: {CONFIGURE_A_VENDOR}"
            ])
        if once:
            if pool.timers is not None:
                pool.timers.run_once()  # timers due by now become work of this drain
            done = pool.workers[0].drain()
            if pool.notify is not None:
                pool.notify.send_due()  # the notices this drain recorded
            log("worker drained", tickets=done)
            return done
        stop = pool.stop_event

        def _on_signal(signum: int, _frame: FrameType | None) -> None:
            log("stopping: finishing the tickets in hand", signal=signal.Signals(signum).name)
            stop.set()
            pool.wake()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        service.start_watching()
        pool.start()
        while not stop.wait(1.0):
            pass
        pool.stop()
        service.stop_watching()
        return 0
    finally:
        service.inbox.close()
