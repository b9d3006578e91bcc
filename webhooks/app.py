"""The HTTP receiver (FastAPI): signed webhooks in, committed to the inbox, then answered.

    POST /webhooks/{jira,zendesk}
        413  body over MAX_BODY_BYTES (checked on Content-Length, then while reading)
        401  signature missing or wrong, Zendesk timestamp outside SIGNATURE_MAX_AGE, or no
             secret configured for the vendor (fail closed)  -- checked on the raw bytes
        415  content type is not JSON
        400  malformed JSON, not an object, or a handled event that lacks a ticket
        202  stored (status "accepted"), or a known event tierdesk does not act on ("ignored")
        200  a delivery already stored (same dedupe key): nothing stored twice
        503  the inbox database is unavailable (the vendor retries later; nothing was stored)
    GET /healthz   the process answers
    GET /readyz    database reachable and policy loaded, else 503
    GET /metrics   Prometheus text

Deliveries are committed in small groups by one writer thread (`CommitBatcher`): requests that
arrive while a commit is on disk share the next one, so each answer still follows its own durable
commit while the disk sync is paid once per group rather than once per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connectors.base import Envelope, PayloadInvalid
from webhooks.inbox import Inbox
from webhooks.logging import log
from webhooks.metrics import CONTENT_TYPE, Metrics
from webhooks.signatures import SignatureInvalid, check_timestamp, verify_jira, verify_zendesk
from webhooks.wiring import EnvelopeFunction

Item = tuple[Envelope, Mapping[str, Any], bytes | None]

_ACCEPTED = b'{"status":"accepted"}'
_DUPLICATE = b'{"status":"duplicate"}'
_IGNORED = b'{"status":"ignored"}'


class CommitBatcher:
    """One thread that commits queued deliveries in groups (group commit) and resolves each
    request's future with "new or duplicate" only after its group is durable."""

    def __init__(self, inbox: Inbox, *, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, Future[bool]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tierdesk-commit", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> Future[bool]:
        future: Future[bool] = Future()
        self._queue.put((item, future))
        return future

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: Sequence[tuple[Item, Future[bool]]]) -> None:
        try:
            results = self.inbox.enqueue_many([item for item, _ in batch])
        except Exception:
            # One bad item must not fail the others: commit them one by one.
            for item, future in batch:
                try:
                    future.set_result(self.inbox.enqueue_many([item])[0])
                except Exception as exc:
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith(
        "+json"
    ))


class ReceiverConfig:
    """What the receiver needs besides the inbox: secrets, classifiers, limits."""

    def __init__(
        self,
        *,
        secrets: Mapping[str, str | None],
        classifiers: Mapping[str, EnvelopeFunction],
        max_body_bytes: int = 1024 * 1024,
        signature_max_age: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secrets = dict(secrets)
        self.classifiers = dict(classifiers)
        self.max_body_bytes = max_body_bytes
        self.signature_max_age = signature_max_age
        self.clock = clock


def create_app(
    *,
    inbox: Inbox,
    config: ReceiverConfig,
    metrics: Metrics | None = None,
    policy_loaded: Callable[[], bool] = lambda: True,
    on_enqueued: Callable[[], None] | None = None,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """The receiver app over `inbox`. `on_enqueued` is called after each new stored event (the
    embedded worker uses it to wake up); `on_startup`/`on_shutdown` run in the lifespan."""
    metrics = metrics or Metrics()
    state: dict[str, CommitBatcher] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["batcher"] = CommitBatcher(inbox)
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished in-flight requests by now.
            state["batcher"].stop()
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

    async def store(item: Item) -> bool:
        batcher = state.get("batcher")
        if batcher is None:  # used without lifespan (plain TestClient): commit inline
            results = await asyncio.to_thread(inbox.enqueue_many, [item])
            return results[0]
        return await asyncio.wrap_future(batcher.submit(item))

    # Label children looked up once: the hot path of a 202 does no label resolution.
    received = {v: metrics.received.labels(v) for v in ("jira", "zendesk")}
    ingest_latency = {v: metrics.ingest_latency.labels(v) for v in ("jira", "zendesk")}

    async def receive(vendor: str, request: Request) -> Response:
        started = asyncio.get_running_loop().time()
        headers = request.headers

        def reject(status: int, reason: str, message: str) -> JSONResponse:
            metrics.rejected.labels(vendor, reason).inc()
            log("webhook rejected", vendor=vendor, status=status, reason=reason, detail=message,
                delivery_id=_delivery_hint(vendor, headers))
            return _error(status, message)

        # 413 first: never buffer more than the limit.
        declared = headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > config.max_body_bytes
            except ValueError:
                return reject(400, "bad-length", "Content-Length is not a number")
            if too_big:
                return reject(
                    413, "too-large", f"body over {config.max_body_bytes} bytes (MAX_BODY_BYTES)"
                )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                return reject(
                    413, "too-large", f"body over {config.max_body_bytes} bytes (MAX_BODY_BYTES)"
                )
            chunks.append(chunk)
        body = b"".join(chunks)

        # 401: the signature on the raw bytes, before anything is parsed.
        secret = config.secrets.get(vendor)
        try:
            if vendor == "jira":
                verify_jira(body, signature=headers.get("x-hub-signature"), secret=secret)
            else:
                timestamp = headers.get("x-zendesk-webhook-signature-timestamp")
                verify_zendesk(
                    body,
                    signature=headers.get("x-zendesk-webhook-signature"),
                    timestamp=timestamp,
                    secret=secret,
                )
                check_timestamp(timestamp, now=config.clock(), max_age=config.signature_max_age)
        except SignatureInvalid as exc:
            return reject(401, "signature", str(exc))

        if not _is_json(headers.get("content-type")):
            return reject(
                415, "content-type",
                f"expected Content-Type application/json, got {headers.get('content-type')!r}",
            )
        try:
            if vendor == "zendesk":
                # Zendesk may render free text into tierdesk's trigger body unescaped (not
                # confirmed either way): parse_body salvages the routing keys into a body marked
                # "partial", which costs the worker one read instead of losing the event.
                from connectors.zendesk.events import parse_body

                payload = parse_body(body)
            else:
                payload = json.loads(body)
        except PayloadInvalid as exc:
            return reject(400, "json", str(exc))
        except (ValueError, RecursionError) as exc:
            return reject(400, "json", f"body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return reject(
                400, "json", f"expected a JSON object, got a JSON {type(payload).__name__}"
            )
        classify = config.classifiers.get(vendor)
        if classify is None:
            return reject(
                503, "no-connector", f"the {vendor} connector is not installed on this server"
            )
        try:
            envelope = classify(payload, headers)
        except PayloadInvalid as exc:
            return reject(400, "payload", str(exc))
        except Exception as exc:
            # A payload shape the classifier did not expect: the sender's problem as far as the
            # answer goes (400, never 500), and an error in our log so the classifier is fixed.
            log("classifier failed", level=40, vendor=vendor, error=repr(exc)[:500])
            return reject(400, "payload", f"cannot read this {vendor} payload: {exc!r}"[:500])
        if envelope.handled and not envelope.ticket:
            return reject(400, "payload", "the event names no ticket")
        if not envelope.delivery_id:
            # No dedupe key in the delivery: identical bodies are one delivery.
            envelope = replace(envelope, delivery_id="sha256:" + hashlib.sha256(body).hexdigest())
        if envelope.vendor != vendor:
            envelope = replace(envelope, vendor=vendor)
        # The raw bytes are stored as received (no re-encoding) unless they are not the JSON the
        # payload came from (a salvaged, partial Zendesk body).
        raw = body if _utf8(body) and not payload.get("partial") else None
        try:
            new = await store((envelope, payload, raw))
        except Exception as exc:
            log("inbox unavailable", level=40, vendor=vendor, delivery_id=envelope.delivery_id,
                error=repr(exc)[:300])
            metrics.rejected.labels(vendor, "inbox").inc()
            return JSONResponse(
                {"error": "the inbox is unavailable; retry later"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        ingest_latency[vendor].observe(
            asyncio.get_running_loop().time() - started
        )
        fields: dict[str, Any] = {
            "vendor": vendor,
            "delivery_id": envelope.delivery_id,
            "ticket": envelope.ticket,
            "event_type": envelope.event_type,
        }
        if not new:
            metrics.duplicates.labels(vendor).inc()
            log("webhook duplicate", **fields)
            return Response(_DUPLICATE, status_code=200, media_type="application/json")
        if not envelope.handled:
            metrics.ignored.labels(vendor, envelope.event_type[:64]).inc()
            log("webhook ignored", **fields)
            return Response(_IGNORED, status_code=202, media_type="application/json")
        received[vendor].inc()
        log("webhook accepted", **fields)
        if on_enqueued is not None:
            on_enqueued()
        return Response(_ACCEPTED, status_code=202, media_type="application/json")

    async def jira_webhook(request: Request) -> Response:
        return await receive("jira", request)

    async def zendesk_webhook(request: Request) -> Response:
        return await receive("zendesk", request)

    # Plain Starlette routes: the webhook endpoints read the raw request themselves, so they
    # skip FastAPI's per-request dependency solving (a measurable share of a 202's cost).
    app.router.add_route("/webhooks/jira", jira_webhook, methods=["POST"])
    app.router.add_route("/webhooks/zendesk", zendesk_webhook, methods=["POST"])

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
        if not policy_loaded():
            problems.append("policy not loaded")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        body = await asyncio.to_thread(metrics.render)
        return Response(content=body, media_type=CONTENT_TYPE)

    return app


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _delivery_hint(vendor: str, headers: Mapping[str, str]) -> str | None:
    if vendor == "jira":
        return headers.get("x-atlassian-webhook-identifier")
    return headers.get("x-zendesk-webhook-invocation-id")


def bare_app() -> FastAPI:
    """The same server stack answering 202 without any work: bench/ingest.py's baseline."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/{vendor}")
    async def accept(vendor: str, request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    return app
