"""The webhook gateway: one endpoint per provider, signatures checked, raw body published before 200.

A provider retries until it gets a 2xx, so the gateway answers 200 only after Kafka acknowledged the raw
event (acks=all); when Kafka cannot take it, 503 makes the provider retry later. Nothing is parsed here
beyond what is needed to key the record by conversation (so a conversation stays in order on one partition);
normalization, dedupe and dead letters happen in the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from confluent_kafka import KafkaException, Producer
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from prometheus_client import Counter, Histogram

from connectors.channels import InvalidPayload, RawEvent, normalize
from connectors.signatures import verify_sha256, verify_twilio
from connectors.webchat.sessions import ReplyFollower, Visitors
from infra.kafka_clients import make_producer
from infra.metrics import exposition
from infra.settings import Settings
from schemas.topics import SOURCES

log = logging.getLogger("centralita.gateway")
WEBCHAT_PAGE = Path(__file__).resolve().parent / "webchat" / "index.html"
META_SOURCES = ("whatsapp", "messenger", "instagram")
FORWARDED_HEADERS = ("content-type", "user-agent", "x-hub-signature-256", "x-twilio-signature", "x-centralita-signature",
                     "i-twilio-idempotency-token")

WEBHOOKS = Counter("centralita_gateway_webhooks_total", "Webhook requests by outcome", ["source", "outcome"])
PUBLISH_SECONDS = Histogram("centralita_gateway_publish_seconds", "Time until Kafka acknowledged a raw event", ["source"])


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge the record in time."""


class RawPublisher:
    """An acks=all producer whose deliveries can be awaited from asyncio."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.producer: Producer = make_producer(settings, **{"message.timeout.ms": int(timeout_s * 1000), "linger.ms": 1})
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="gateway-producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    async def publish(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def on_delivery(err, msg) -> None:
            if not done.done():
                loop.call_soon_threadsafe(lambda: done.done() or (done.set_exception(PublishFailed(str(err))) if err
                                                                  else done.set_result(msg.offset())))
        try:
            self.producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            raise PublishFailed(str(exc)) from None
        try:
            await asyncio.wait_for(done, self.timeout_s + 1)
        except asyncio.TimeoutError:
            raise PublishFailed("no acknowledgement from Kafka in time") from None

    def close(self) -> None:
        self._stop.set()
        self.producer.flush(5)


@dataclass
class GatewayConfig:
    max_body_bytes: int
    meta_app_secret: str
    meta_verify_token: str
    twilio_auth_token: str
    relay_secret: str
    public_base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "GatewayConfig":
        return cls(settings.gateway_max_body_bytes, settings.meta_app_secret.get_secret_value(),
                   settings.meta_verify_token.get_secret_value(), settings.twilio_auth_token.get_secret_value(),
                   settings.relay_secret.get_secret_value(), settings.public_base_url)


def conversation_key(source: str, body: bytes) -> bytes:
    """Kafka key of a raw event: its conversation, so its events stay in order; empty when unreadable."""
    try:
        messages = normalize(RawEvent(source, body))
    except InvalidPayload:
        return b""
    return messages[0]["conversation_id"].encode() if messages else b""


def create_app(config: GatewayConfig, publisher: Any, settings: Settings | None = None) -> FastAPI:
    """The gateway; with `settings`, also the web chat page whose replies are followed on Kafka."""
    visitors = Visitors()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        follower = None
        if settings is not None:
            follower = ReplyFollower(settings, visitors, asyncio.get_running_loop())
            follower.start()
        yield
        if follower is not None:
            follower.stop()

    app = FastAPI(title="Centralita webhook gateway", version="1", lifespan=lifespan,
                  description="Webhooks of messaging providers in; raw events to Kafka (channel.<source>.inbound.raw).")

    async def read_body(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def signature_ok(source: str, request: Request, body: bytes) -> bool:
        if source in META_SOURCES:
            return verify_sha256(config.meta_app_secret, body, request.headers.get("x-hub-signature-256"))
        if source == "twilio":
            url = (config.public_base_url.rstrip("/") + request.url.path) if config.public_base_url else str(request.url)
            try:
                params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                return False
            return verify_twilio(config.twilio_auth_token, url, params, request.headers.get("x-twilio-signature"))
        return verify_sha256(config.relay_secret, body, request.headers.get("x-centralita-signature"))

    @app.get("/webhooks/{source}", summary="Meta verification handshake (WhatsApp, Messenger, Instagram)")
    async def verify(source: str, mode: str = Query("", alias="hub.mode"), token: str = Query("", alias="hub.verify_token"),
                     challenge: str = Query("", alias="hub.challenge")) -> Response:
        if source not in META_SOURCES:
            return PlainTextResponse("no verification handshake for this source", status_code=404)
        if mode == "subscribe" and config.meta_verify_token and token == config.meta_verify_token:
            return PlainTextResponse(challenge)
        return PlainTextResponse("verification failed", status_code=403)

    @app.post("/webhooks/{source}", summary="Receive one provider webhook",
              responses={200: {"description": "published to Kafka"}, 401: {"description": "bad signature"},
                         413: {"description": "body too large"}, 503: {"description": "Kafka unavailable: retry"}})
    async def receive(source: str, request: Request) -> Response:
        if source not in SOURCES:
            return PlainTextResponse("unknown source", status_code=404)
        body = await read_body(request)
        if body is None:
            WEBHOOKS.labels(source, "too_large").inc()
            return PlainTextResponse(f"body larger than {config.max_body_bytes} bytes", status_code=413)
        if not signature_ok(source, request, body):
            WEBHOOKS.labels(source, "bad_signature").inc()
            return PlainTextResponse("invalid signature", status_code=401)
        headers = [(f"http.{name}", request.headers[name].encode("latin-1", "replace"))
                   for name in FORWARDED_HEADERS if name in request.headers]
        headers.append(("centralita.received_at", str(int(time.time() * 1000)).encode()))
        started = time.monotonic()
        try:
            await publisher.publish(f"channel.{source}.inbound.raw", conversation_key(source, body), body, headers)
        except PublishFailed as exc:
            WEBHOOKS.labels(source, "kafka_unavailable").inc()
            log.warning("raw %s event not published: %s", source, exc)
            return PlainTextResponse("temporarily unavailable, retry", status_code=503, headers={"Retry-After": "5"})
        PUBLISH_SECONDS.labels(source).observe(time.monotonic() - started)
        WEBHOOKS.labels(source, "accepted").inc()
        if source == "twilio":  # an empty TwiML answer: no auto-reply from Twilio
            return Response('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', media_type="text/xml")
        return PlainTextResponse("ok")

    @app.get("/webchat", summary="The customer web chat page", response_class=HTMLResponse)
    async def webchat_page() -> HTMLResponse:
        return HTMLResponse(WEBCHAT_PAGE.read_text(encoding="utf-8"))

    @app.websocket("/webchat/ws")
    async def webchat_socket(socket: WebSocket, visitor_id: str = Query(..., min_length=3, max_length=100)) -> None:
        await socket.accept()
        visitors.add(visitor_id, socket)
        try:
            while True:
                frame = await socket.receive_text()
                if len(frame) > config.max_body_bytes:
                    await socket.send_text(json.dumps({"type": "error", "reason": "message too large"}))
                    continue
                try:
                    data = json.loads(frame)
                except ValueError:
                    await socket.send_text(json.dumps({"type": "error", "reason": "not JSON"}))
                    continue
                if not isinstance(data, dict):
                    await socket.send_text(json.dumps({"type": "error", "reason": "not a JSON object"}))
                    continue
                data.update(visitor_id=visitor_id, site_id="main", sent_at=int(time.time() * 1000))
                body = json.dumps(data, ensure_ascii=False).encode()
                headers = [("centralita.received_at", str(data["sent_at"]).encode()), ("http.user-agent",
                           socket.headers.get("user-agent", "").encode("latin-1", "replace"))]
                try:
                    await publisher.publish("channel.webchat.inbound.raw", conversation_key("webchat", body), body, headers)
                except PublishFailed:
                    WEBHOOKS.labels("webchat", "kafka_unavailable").inc()
                    await socket.send_text(json.dumps({"type": "error", "reason": "temporarily unavailable"}))
                    continue
                WEBHOOKS.labels("webchat", "accepted").inc()
                await socket.send_text(json.dumps({"type": "ack", "message_id": data.get("message_id")}))
        except WebSocketDisconnect:
            pass
        finally:
            visitors.remove(visitor_id, socket)

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return app
