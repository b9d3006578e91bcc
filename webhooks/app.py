"""The HTTP receiver (FastAPI): signed webhooks in, committed to the inbox, then answered.

    POST /webhooks/<vendor>    one route per vendor of the registry (connectors.base.VENDORS)
        413  body over MAX_BODY_BYTES (checked on Content-Length, then while reading)
        401  the vendor's `verify` refused the raw bytes: signature missing or wrong, a signature
             timestamp outside SIGNATURE_MAX_AGE, or no secret configured for the vendor (fail
             closed); or its `replayed` refused a signed body whose time is outside the replay
             horizon
        415  content type is not JSON
        400  malformed JSON, not an object, a handled event that lacks a ticket, or a ticket
             key / delivery id longer than the inbox holds (255 characters)
        202  stored (status "accepted"), or a known event tierdesk does not act on ("ignored")
        200  a delivery already stored (same dedupe key): nothing stored twice
        503  the inbox (database or writer process) is unavailable; the vendor retries later,
             and a delivery that was stored all the same is then answered 200
    GET /healthz   the process answers
    GET /readyz    database reachable, inbox writer up, policy loaded and a webhook secret for
                   every configured vendor, else 503 with the problems
    GET /metrics   Prometheus text

Deliveries are committed in small groups (group commit): requests that arrive while a commit is
on disk share the next one, so each answer still follows its own durable commit while the disk
sync is paid once per group (webhooks/commit.py). `tierdesk serve` commits in a child process
(`WriterProcess`) so that the event loop keeps a core to itself; `create_app` alone, and `serve`
with TIERDESK_INBOX_WRITER=thread, commit in one thread of this process (`CommitBatcher`).
Either way a group's answers cost the event loop one wake-up.

The webhook endpoints are plain ASGI apps (`WebhookEndpoint`) under the FastAPI app, with a
cached HMAC key (connectors/signatures.py) and orjson (connectors/payload.py): per delivery, the
work besides the HTTP stack is one HMAC, one parse and one row (bench/ingest.py measures it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connectors.base import VENDORS, Envelope, PayloadInvalid, Vendor, WebhookAuth
from connectors.signatures import SignatureInvalid
from webhooks.commit import CommitBatcher, Committer
from webhooks.inbox.records import Delivery
from webhooks.inbox.schema import CREDENTIALS_PAUSE_PREFIX, MAX_KEY_LENGTH
from webhooks.inbox.store import Inbox
from webhooks.logging import log
from webhooks.metrics import CONTENT_TYPE, Metrics

_ACCEPTED = b'{"status":"accepted"}'
_DUPLICATE = b'{"status":"duplicate"}'
_IGNORED = b'{"status":"ignored"}'
_UNAVAILABLE = b'{"error":"the inbox is unavailable; retry later"}'


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith(
        "+json"
    ))


class ReceiverConfig:
    """What the receiver needs besides the inbox: secrets, vendors, limits."""

    def __init__(
        self,
        *,
        secrets: Mapping[str, str | None],
        vendors: Mapping[str, Vendor] = VENDORS,
        max_body_bytes: int = 1024 * 1024,
        signature_max_age: float = 300.0,
        replay_horizon: float | None = 7200.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        previous_secrets: Mapping[str, str | None] | None = None,
        basic_auth: Mapping[str, tuple[str, str] | None] | None = None,
        required_secrets: Iterable[str] = (),
    ) -> None:
        self.secrets = dict(secrets)
        #: During a rotation, the secret being retired per vendor (accepted beside the current).
        self.previous_secrets = dict(previous_secrets or {})
        #: Opt-in HTTP Basic (user, password) per vendor for deliveries that cannot be signed.
        self.basic_auth = dict(basic_auth or {})
        #: Configured vendors: without a secret every delivery of theirs is refused, so
        #: /readyz answers 503 (a webhook that can never be stored is not "ready").
        self.required_secrets = tuple(required_secrets)
        #: The vendors whose deliveries are taken; one of the registry missing here is
        #: answered 503 (its connector is not served by this receiver).
        self.vendors = dict(vendors)
        self.max_body_bytes = max_body_bytes
        self.signature_max_age = signature_max_age
        #: Signed bodies whose own time is further than this (s) from now are refused as
        #: replays (None: not checked), for vendors that sign it (connectors.base.Replayed).
        self.replay_horizon = replay_horizon
        self.clock = clock

    def auth(self, vendor: str) -> WebhookAuth:
        """How `vendor`'s deliveries are authenticated."""
        return WebhookAuth(
            secret=self.secrets.get(vendor),
            previous=self.previous_secrets.get(vendor),
            basic=self.basic_auth.get(vendor),
            signature_max_age=self.signature_max_age,
            replay_horizon=self.replay_horizon,
        )


class WebhookEndpoint:
    """`POST /webhooks/<vendor>` as a plain ASGI app: read, check, classify, commit, answer."""

    def __init__(
        self,
        vendor: str,
        *,
        config: ReceiverConfig,
        metrics: Metrics,
        store: Callable[[Delivery], Awaitable[bool]],
        on_enqueued: Callable[[], None] | None,
    ) -> None:
        self.vendor = vendor
        self.config = config
        self.metrics = metrics
        self.store = store
        self.on_enqueued = on_enqueued
        #: This vendor's webhook functions (None: not served here, answered 503).
        self.functions = config.vendors.get(vendor)
        self.auth = config.auth(vendor)
        # Label children looked up once: the hot path of a 202 does no label resolution.
        self._received = metrics.received.labels(vendor)
        self._latency = metrics.ingest_latency.labels(vendor)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = asyncio.get_running_loop().time()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status, answer, extra = await self._handle(headers, receive, started)
        if status == 0:
            return  # the client went away before its body arrived: nothing to answer
        response_headers = [(b"content-type", b"application/json"),
                            (b"content-length", str(len(answer)).encode("ascii"))]
        response_headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra)
        await send({"type": "http.response.start", "status": status,
                    "headers": response_headers})
        await send({"type": "http.response.body", "body": answer})

    def _reject(
        self, headers: Mapping[str, str], status: int, reason: str, message: str
    ) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        self.metrics.rejected.labels(self.vendor, reason).inc()
        log("webhook rejected", vendor=self.vendor, status=status, reason=reason,
            detail=message, delivery_id=self._delivery_hint(headers))
        return status, json.dumps({"error": message}).encode("utf-8"), ()

    def _delivery_hint(self, headers: Mapping[str, str]) -> str | None:
        """The vendor's delivery id header, for the log line of a refused delivery."""
        if self.functions is None:
            return None
        return headers.get(self.functions.delivery_header)

    async def _handle(
        self, headers: Mapping[str, str], receive: Receive, started: float
    ) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        vendor, config = self.vendor, self.config
        # 413 first: never buffer more than the limit.
        declared = headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > config.max_body_bytes
            except ValueError:
                return self._reject(headers, 400, "bad-length", "Content-Length is not a number")
            if too_big:
                return self._reject(headers, 413, "too-large",
                                    f"body over {config.max_body_bytes} bytes (MAX_BODY_BYTES)")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return 0, b"", ()  # http.disconnect
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > config.max_body_bytes:
                    return self._reject(
                        headers, 413, "too-large",
                        f"body over {config.max_body_bytes} bytes (MAX_BODY_BYTES)")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)

        functions = self.functions
        if functions is None:
            return self._reject(headers, 503, "no-connector",
                                f"the {vendor} connector is not installed on this server")
        # 401: the signature on the raw bytes, before anything is parsed.
        try:
            functions.verify(body, headers, self.auth, now=config.clock())
        except SignatureInvalid as exc:
            return self._reject(headers, 401, "signature", str(exc))

        if not _is_json(headers.get("content-type")):
            return self._reject(
                headers, 415, "content-type",
                f"expected Content-Type application/json, got {headers.get('content-type')!r}")
        try:
            payload = functions.parse(body)
        except PayloadInvalid as exc:
            return self._reject(headers, 400, "json", str(exc))
        except (ValueError, RecursionError) as exc:
            return self._reject(headers, 400, "json", f"body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return self._reject(
                headers, 400, "json",
                f"expected a JSON object, got a JSON {type(payload).__name__}")
        try:
            envelope = functions.classify(payload, headers)
        except PayloadInvalid as exc:
            return self._reject(headers, 400, "payload", str(exc))
        except Exception as exc:
            # A payload shape the classifier did not expect: the sender's problem as far as the
            # answer goes (400, never 500), and an error in our log so the classifier is fixed.
            log("classifier failed", level=40, vendor=vendor, error=repr(exc)[:500])
            return self._reject(headers, 400, "payload",
                                f"cannot read this {vendor} payload: {exc!r}"[:500])
        if envelope.handled and not envelope.ticket:
            return self._reject(headers, 400, "payload", "the event names no ticket")
        too_long = _over_long(envelope)
        if too_long:
            # Longer than the inbox columns: PostgreSQL refused it (503, retried for ever) and
            # SQLite stored it (202); both now say what is wrong, and the vendor stops.
            return self._reject(headers, 400, "payload", too_long)
        replayed = functions.replayed(envelope, self.auth, now=config.clock())
        if replayed:
            return self._reject(headers, 401, "replay", replayed)
        if not envelope.delivery_id:
            # No dedupe key in the delivery: identical bodies are one delivery.
            envelope = replace(envelope, delivery_id="sha256:" + hashlib.sha256(body).hexdigest())
        if envelope.vendor != vendor:
            envelope = replace(envelope, vendor=vendor)
        # The raw bytes are stored as received (no re-encoding) unless they are not the JSON the
        # payload came from (a salvaged, partial body); the inbox re-encodes bytes that
        # are not UTF-8.
        raw = None if payload.get("partial") else body
        try:
            new = await self.store((envelope, payload, raw))
        except Exception as exc:
            log("inbox unavailable", level=40, vendor=vendor, delivery_id=envelope.delivery_id,
                error=repr(exc)[:300])
            self.metrics.rejected.labels(vendor, "inbox").inc()
            return 503, _UNAVAILABLE, (("retry-after", "5"),)
        self._latency.observe(asyncio.get_running_loop().time() - started)
        if not new:
            self.metrics.duplicates.labels(vendor).inc()
            log("webhook duplicate", vendor=vendor, delivery_id=envelope.delivery_id,
                ticket=envelope.ticket, event_type=envelope.event_type)
            return 200, _DUPLICATE, ()
        if not envelope.handled:
            self.metrics.ignored.labels(vendor, envelope.event_type[:64]).inc()
            log("webhook ignored", vendor=vendor, delivery_id=envelope.delivery_id,
                ticket=envelope.ticket, event_type=envelope.event_type)
            return 202, _IGNORED, ()
        self._received.inc()
        log("webhook accepted", vendor=vendor, delivery_id=envelope.delivery_id,
            ticket=envelope.ticket, event_type=envelope.event_type)
        if self.on_enqueued is not None:
            self.on_enqueued()
        return 202, _ACCEPTED, ()


def create_app(
    *,
    inbox: Inbox,
    config: ReceiverConfig,
    metrics: Metrics | None = None,
    policy_loaded: Callable[[], bool] = lambda: True,
    on_enqueued: Callable[[], None] | None = None,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
    committer: Callable[[], Awaitable[Committer]] | None = None,
) -> FastAPI:
    """The receiver app over `inbox`. `on_enqueued` is called after each new stored event (the
    embedded worker uses it to wake up); `on_startup`/`on_shutdown` run in the lifespan.
    `committer` starts what commits deliveries (default: a `CommitBatcher` thread)."""
    metrics = metrics or Metrics()
    state: dict[str, Committer] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["batcher"] = await committer() if committer is not None else CommitBatcher(inbox)
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished in-flight requests by now.
            await state["batcher"].aclose()
            if on_shutdown is not None:
                on_shutdown()

    app = FastAPI(
        title="tierdesk",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.metrics = metrics
    app.state.inbox = inbox

    async def store(item: Delivery) -> bool:
        batcher = state.get("batcher")
        if batcher is None:  # used without lifespan (plain TestClient): commit inline
            results = await asyncio.to_thread(inbox.enqueue_many, [item])
            return results[0]
        return await batcher.submit(item)

    # Plain ASGI endpoints: the webhook routes read the raw request themselves, so they skip
    # Starlette's Request/Response objects and FastAPI's per-request dependency solving (a
    # measurable share of a 202's cost); the server stack and middleware are the same.
    for vendor in VENDORS:
        endpoint = WebhookEndpoint(vendor, config=config, metrics=metrics, store=store,
                                   on_enqueued=on_enqueued)
        app.router.routes.append(Route(f"/webhooks/{vendor}", endpoint, methods=["POST"]))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        problems: list[str] = []
        try:
            await asyncio.to_thread(inbox.ping)
        except Exception as exc:
            problems.append(f"database unreachable: {type(exc).__name__}")
        batcher = state.get("batcher")
        problem = batcher.problem() if batcher is not None else None
        if problem:
            problems.append(problem)
        if not policy_loaded():
            problems.append("policy not loaded")
        for vendor in config.required_secrets:
            # HTTP Basic (opt-in, for sites that cannot sign) also lets deliveries in.
            if not config.secrets.get(vendor) and not config.basic_auth.get(vendor):
                problems.append(
                    f"no {vendor} webhook secret: every {vendor} delivery is refused (401); set"
                    f" TIERDESK_{vendor.upper()}_WEBHOOK_SECRET"
                )
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        # A vendor paused because it refuses tierdesk's credentials: the receiver still takes
        # webhooks (nothing is lost), but nothing is written until the setting is fixed.
        try:
            pauses = await asyncio.to_thread(inbox.pauses)
        except Exception:
            pauses = {}
        refused = {
            vendor: reason
            for vendor, (_, reason) in sorted(pauses.items())
            if reason.startswith(CREDENTIALS_PAUSE_PREFIX)
        }
        if refused:
            return JSONResponse({"status": "ready", "vendors_paused": refused})
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        body = await asyncio.to_thread(metrics.render)
        return Response(content=body, media_type=CONTENT_TYPE)

    return app


def _over_long(envelope: Envelope) -> str | None:
    """What is longer than the inbox can hold, or None."""
    if envelope.ticket is not None and len(envelope.ticket) > MAX_KEY_LENGTH:
        return (f"the ticket key is {len(envelope.ticket)} characters; at most {MAX_KEY_LENGTH}"
                " are accepted")
    if len(envelope.delivery_id) > MAX_KEY_LENGTH:
        return (f"the delivery id is {len(envelope.delivery_id)} characters; at most"
                f" {MAX_KEY_LENGTH} are accepted")
    return None


