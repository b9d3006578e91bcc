"""The sandbox's HTTP servers (one port per vendor), its control API, and `run_in_thread`.

Built on the standard library's `ThreadingHTTPServer` rather than an ASGI server because the
faults need the TCP connection itself: "reset after a write was applied" closes the socket with
SO_LINGER 0 (an RST, which `requests` reports as a connection error), which no ASGI app can do.

Per vendor request, in order: route match (404/405 in the vendor's shape), fault gate (a client
back before its Retry-After is counted as a violation and refused; outage 503; 429 storm or
count; per-minute budget), authentication (401), injected 409 collision on an issue/ticket
edit, the handler (under the sandbox lock), reset-after-write, slow answer.

Control API, on both ports (never subject to faults):

    GET    /_sandbox/state                  records, faults, violations, counts, deliveries
    GET    /_sandbox/log?since=N&deliveries_since=M   requests answered, delivery attempts
    POST   /_sandbox/faults                 {"jira": {...}, "zendesk": {...}}  (faults.FaultSpec)
    DELETE /_sandbox/faults                 all faults off
    POST   /_sandbox/{jira|zendesk}/agent   {"as": user, "method", "path", "body"}: act as an agent
    POST   /_sandbox/wait?timeout=S         block until no delivery is queued or in flight
    POST   /_sandbox/deliveries/hold        keep new deliveries back ...
    POST   /_sandbox/deliveries/release?order=fifo|reverse&spacing=S   ... and send them
    GET    /_sandbox/clock                  {"now": ISO, "fixed": bool}: the sandbox's time
    POST   /_sandbox/clock                  {"now": ISO | null}: stop it at an instant (forward
                                            only) or back to the system time (sandbox/clock.py)
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox.clock import ClockInvalid, parse_instant
from sandbox.faults import VENDORS, FaultsInvalid, Vendor, parse_faults
from sandbox.state import Sandbox, Seed, load_seed
from sandbox.wire import ApiError, Request, Response, Route, parse_query
from sandbox.zendesk.tickets import UPDATE_CONFLICT

log = logging.getLogger("tierdesk.sandbox")

EDIT_HANDLERS = frozenset({"edit_issue", "update_ticket"})


class Router:
    """The routes of one vendor."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        """The route and its path parameters, or 404 / 405."""
        allowed = False
        for r in self.routes:
            m = r.pattern.match(path)
            if m:
                if r.method == method:
                    return r, m.groupdict()
                allowed = True
        return 405 if allowed else 404


def vendor_error(vendor: str, status: int, message: str) -> Any:
    """An error body in the vendor's own shape."""
    if vendor == "jira":
        return {"errorMessages": [message], "errors": {}}
    return {
        "error": {
            401: "Couldn't authenticate you",
            403: "Forbidden",
            404: "InvalidEndpoint",
            409: "Conflict",
            429: "TooManyRequests",
            503: "ServiceUnavailable",
        }.get(status, "Error"),
        "description": message,
    }


def _refusal_headers(vendor: str, status: int, retry_after: int | None) -> dict[str, str]:
    """Retry-After, and on 429 the vendor's rate-limit headers (Jira: X-RateLimit-*,
    RateLimit-Reason; Zendesk: X-Rate-Limit, X-Rate-Limit-Remaining)."""
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if status == 429 and vendor == "jira":
        reset = datetime.now(UTC) + timedelta(seconds=retry_after or 1)
        headers.update(
            {
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                "RateLimit-Reason": "jira-quota-tenant-based",
            }
        )
    elif status == 429:
        headers.update({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0"})
    return headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        vendor: Vendor,
        sandbox: Sandbox,
        router: Router,
        routers: Mapping[str, Router],
    ) -> None:
        super().__init__(address, _Handler)
        self.vendor = vendor
        self.sandbox = sandbox
        self.router = router
        self.routers = routers

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up mid-answer are part of the game, not errors.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.server.vendor, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # ------------------------------------------------------------------------------- core

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        address = self.server.server_address
        host = self.headers.get("Host") or f"{address[0]!s}:{address[1]}"
        request = Request(
            self.command, parts.path, parse_query(parts.query), headers, body, f"http://{host}"
        )
        if parts.path.startswith("/_sandbox/"):
            self._send(self._control(request, parts.path))
            return
        vendor = self.server.vendor
        sandbox = self.server.sandbox
        matched = self.server.router.match(self.command, parts.path)
        if isinstance(matched, int):
            text = "No such endpoint in the sandbox" if matched == 404 else "Method not allowed"
            sandbox.record(
                vendor,
                self.command,
                parts.path,
                parts.query,
                matched,
                None,
                write=False,
                fault=None,
            )
            self._send(Response(matched, vendor_error(vendor, matched, text)))
            return
        route, params = matched
        request.params = params
        faults = sandbox.faults[vendor]
        auth = self.headers.get("Authorization") or f"anonymous {self.client_address[0]}"
        identity = hashlib.sha256(auth.encode()).hexdigest()[:16]
        gate = faults.admit(identity, self.command, parts.path, now=time.monotonic())
        if gate is not None:
            headers = _refusal_headers(vendor, gate.status, gate.retry_after)
            sandbox.record(
                vendor,
                self.command,
                parts.path,
                parts.query,
                gate.status,
                None,
                write=route.write,
                fault=gate.reason,
            )
            self._send(
                Response(gate.status, vendor_error(vendor, gate.status, gate.reason), headers)
            )
            return
        fault: str | None = None
        with sandbox.lock:
            sim = sandbox.sim(vendor)
            sim.base_url = request.base_url
            try:
                request.actor = sim.authenticate(headers)
                if route.admin and not sim.is_admin(request.actor):
                    raise ApiError(
                        403,
                        vendor_error(
                            vendor,
                            403,
                            "Only administrators may do this (the seed user needs admin).",
                        ),
                    )
                if route.handler.__name__ in EDIT_HANDLERS and faults.take("conflict"):
                    fault = "conflict"
                    response = self._collision(vendor, sandbox, params)
                else:
                    response = route.handler(request)
            except ApiError as exc:
                response = Response(exc.status, exc.body, exc.headers)
            except Exception as exc:  # a sandbox bug: answer 500 and say so, keep serving
                log.exception("sandbox handler %s failed", route.handler.__name__)
                response = Response(
                    500, vendor_error(vendor, 500, f"sandbox error: {type(exc).__name__}: {exc}")
                )
        if route.write and response.status < 400 and faults.take("reset_after_write"):
            sandbox.record(
                vendor,
                self.command,
                parts.path,
                parts.query,
                None,
                request.actor,
                write=True,
                fault="reset_after_write",
            )
            self._reset()
            return
        if faults.take("slow"):
            fault = fault or "slow"
            time.sleep(faults.slow_seconds())
        sandbox.record(
            vendor,
            self.command,
            parts.path,
            parts.query,
            response.status,
            request.actor,
            write=route.write,
            fault=fault,
        )
        self._send(response)

    def _collision(self, vendor: str, sandbox: Sandbox, params: Mapping[str, str]) -> Response:
        """Someone else saved the ticket a moment before this write: 409, nothing applied."""
        if vendor == "zendesk":
            ticket = (
                sandbox.zendesk.tickets.get(int(params["id"])) if params["id"].isdigit() else None
            )
            if ticket is not None:
                sandbox.zendesk.touch(ticket)
            return Response(409, dict(UPDATE_CONFLICT))
        return Response(
            409,
            vendor_error(
                "jira", 409, "The issue was changed by another request; read it again and retry."
            ),
        )

    def _reset(self) -> None:
        """Close with an RST: the client sees a connection reset and no answer."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _send(self, response: Response) -> None:
        data = b""
        if response.body is not None:
            data = json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            for k, v in response.headers.items():
                self.send_header(k, v)
            if response.body is not None:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout passed while the answer was slow).
            self.close_connection = True

    # ---------------------------------------------------------------------------- control

    def _control(self, request: Request, path: str) -> Response:
        sandbox = self.server.sandbox
        try:
            if path == "/_sandbox/state" and request.method == "GET":
                return Response(200, sandbox.snapshot())
            if path == "/_sandbox/log" and request.method == "GET":
                mark = request.arg("deliveries_since")
                return Response(
                    200,
                    sandbox.log_since(
                        int(request.arg("since") or 0), int(mark) if mark is not None else None
                    ),
                )
            if path == "/_sandbox/faults" and request.method == "POST":
                specs = parse_faults(
                    json.loads(request.body or b"{}"), source="POST /_sandbox/faults"
                )
                sandbox.set_faults(specs)
                return Response(200, {v: sandbox.faults[v].snapshot() for v in VENDORS})
            if path == "/_sandbox/faults" and request.method == "DELETE":
                sandbox.clear_faults()
                return Response(204, None)
            if path == "/_sandbox/deliveries/hold" and request.method == "POST":
                sandbox.deliverer.hold()
                return Response(200, {"holding": True})
            if path == "/_sandbox/deliveries/release" and request.method == "POST":
                released = sandbox.deliverer.release(
                    order=request.arg("order") or "fifo",
                    spacing=float(request.arg("spacing") or 0),
                )
                return Response(200, {"released": released})
            if path == "/_sandbox/clock" and request.method == "GET":
                return Response(200, sandbox.clock.snapshot())
            if path == "/_sandbox/clock" and request.method == "POST":
                spec = json.loads(request.body or b"{}")
                if not isinstance(spec, dict) or "now" not in spec:
                    raise ClockInvalid('expected {"now": "2026-11-23T08:00:00Z"} or {"now": null}')
                sandbox.clock.set(parse_instant(spec["now"]))
                return Response(200, sandbox.clock.snapshot())
            if path == "/_sandbox/wait" and request.method == "POST":
                idle = sandbox.deliverer.wait_idle(float(request.arg("timeout") or 10))
                return Response(200, {"idle": idle})
            for vendor in VENDORS:
                if path == f"/_sandbox/{vendor}/agent" and request.method == "POST":
                    spec = json.loads(request.body or b"{}")
                    if not isinstance(spec, dict) or not {"as", "method", "path"} <= set(spec):
                        raise ValueError(
                            'expected {"as": user, "method": ..., "path": ..., "body": {...}}'
                        )
                    result = agent(
                        sandbox,
                        self.server.routers[vendor],
                        vendor,
                        str(spec["as"]),
                        str(spec["method"]),
                        str(spec["path"]),
                        spec.get("body"),
                        base_url=request.base_url,
                    )
                    return Response(200, {"status": result.status, "body": result.body})
        except (ValueError, FaultsInvalid) as exc:
            return Response(400, {"error": str(exc)})
        return Response(
            404,
            {
                "error": f"no control endpoint {request.method} {path}; see"
                " sandbox/server.py"
            },
        )


def agent(
    sandbox: Sandbox,
    router: Router,
    vendor: str,
    as_user: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    base_url: str | None = None,
) -> Response:
    """Make a vendor request as a scripted agent: no faults, not counted with tierdesk's."""
    split = urlsplit(path)
    matched = router.match(method.upper(), split.path)
    if isinstance(matched, int):
        raise ValueError(f"{vendor} has no endpoint {method.upper()} {split.path}")
    route, params = matched
    with sandbox.lock:
        sim = sandbox.sim(vendor)
        actor = _find_user(sandbox, vendor, as_user)
        if route.admin and not sim.is_admin(actor):
            raise ValueError(f"{as_user} is no administrator; {method} {split.path} needs one")
        request = Request(
            method.upper(),
            split.path,
            parse_query(split.query),
            {},
            json.dumps(body).encode() if body is not None else b"",
            base_url or sim.base_url,
            actor,
            params,
            agent=True,
        )
        try:
            response = route.handler(request)
        except ApiError as exc:
            response = Response(exc.status, exc.body, exc.headers)
    sandbox.record(
        f"{vendor}-agent",
        method.upper(),
        split.path,
        split.query,
        response.status,
        actor,
        write=route.write,
        fault=None,
    )
    return response


def _find_user(sandbox: Sandbox, vendor: str, who: str) -> str:
    if vendor == "jira":
        for u in sandbox.jira.users.values():
            if who in (u.accountId, u.name, u.emailAddress):
                return u.accountId
    else:
        for zu in sandbox.zendesk.users.values():
            if who in (str(zu.id), zu.email):
                return str(zu.id)
    raise ValueError(f"no {vendor} user {who!r} in the seed")


@dataclass
class SandboxHandle:
    """A running sandbox: its URLs, its state, and how to stop it."""

    sandbox: Sandbox
    jira_url: str
    zendesk_url: str
    _servers: tuple[_Server, _Server]
    _threads: tuple[threading.Thread, threading.Thread]

    @property
    def zendesk_netloc(self) -> str:
        """`host:port` for ZENPY_FORCE_NETLOC (zenpy builds https://{subdomain}.zendesk.com)."""
        return self.zendesk_url.split("://", 1)[1]

    def zenpy_env(self) -> dict[str, str]:
        """The environment that points an unmodified zenpy at this sandbox."""
        return {"ZENPY_FORCE_SCHEME": "http", "ZENPY_FORCE_NETLOC": self.zendesk_netloc}

    def set_faults(self, data: Mapping[str, Any]) -> None:
        """Switch faults on: `{"jira": {...}, "zendesk": {...}}` (see faults.FaultSpec)."""
        self.sandbox.set_faults(parse_faults(dict(data)))

    def clear_faults(self) -> None:
        self.sandbox.clear_faults()

    def state(self) -> dict[str, Any]:
        return self.sandbox.snapshot()

    def agent(
        self, vendor: str, as_user: str, method: str, path: str, body: Any = None
    ) -> Response:
        """Act on a vendor as a scripted agent (webhooks fire as for any other change)."""
        server = self._servers[0] if vendor == "jira" else self._servers[1]
        base = self.jira_url if vendor == "jira" else self.zendesk_url
        return agent(
            self.sandbox, server.router, vendor, as_user, method, path, body, base_url=base
        )

    def hold_deliveries(self) -> None:
        """Keep new webhook deliveries back until `release_deliveries`."""
        self.sandbox.deliverer.hold()

    def release_deliveries(self, *, order: str = "fifo", spacing: float = 0.0) -> int:
        """Send the held deliveries in `order` (fifo or reverse), `spacing` seconds apart."""
        return self.sandbox.deliverer.release(order=order, spacing=spacing)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no webhook delivery is queued or in flight; False on timeout."""
        return self.sandbox.deliverer.wait_idle(timeout)

    def set_clock(self, when: datetime | None) -> None:
        """Stop the sandbox's clock at `when` (forward only), or None: the system time."""
        self.sandbox.clock.set(when)

    def stop(self) -> None:
        """Stop both servers and the deliverer; safe to call twice."""
        for s in self._servers:
            s.shutdown()
            s.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self.sandbox.close()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(
    *,
    seed: Seed | str | Path | dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    jira_port: int = 0,
    zendesk_port: int = 0,
    faults: Mapping[str, Any] | None = None,
    delivery_workers: int = 4,
    retry_base: float = 0.25,
) -> SandboxHandle:
    """Start the sandbox on two ports (0 = any free port) in background threads."""
    loaded = seed if isinstance(seed, Seed) else load_seed(seed)
    sandbox = Sandbox(loaded, delivery_workers=delivery_workers, retry_base=retry_base)
    if faults:
        sandbox.set_faults(parse_faults(dict(faults)))
    routers = {"jira": Router(sandbox.jira.routes()), "zendesk": Router(sandbox.zendesk.routes())}
    try:
        jira = _Server((host, jira_port), "jira", sandbox, routers["jira"], routers)
        try:
            zendesk = _Server((host, zendesk_port), "zendesk", sandbox, routers["zendesk"], routers)
        except OSError:
            jira.server_close()
            raise
    except OSError:
        sandbox.close()
        raise
    threads = (
        threading.Thread(
            target=jira.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="sandbox-jira",
            daemon=True,
        ),
        threading.Thread(
            target=zendesk.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="sandbox-zendesk",
            daemon=True,
        ),
    )
    for t in threads:
        t.start()
    jira_url = f"http://{host}:{jira.server_address[1]}"
    zendesk_url = f"http://{host}:{zendesk.server_address[1]}"
    sandbox.jira.base_url = jira_url
    sandbox.zendesk.base_url = zendesk_url
    return SandboxHandle(sandbox, jira_url, zendesk_url, (jira, zendesk), threads)
