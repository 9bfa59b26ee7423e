"""Connected web chat visitors and the Kafka follower that pushes their replies."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import defaultdict

from confluent_kafka import OFFSET_END, TopicPartition
from fastapi import WebSocket

from infra.kafka_clients import make_consumer
from infra.settings import Settings

log = logging.getLogger("centralita.webchat")
OUTBOUND_TOPIC = "channel.webchat.outbound"


class Visitors:
    """Open sockets by visitor id (one visitor may have several tabs open)."""

    def __init__(self) -> None:
        self.sockets: dict[str, set[WebSocket]] = defaultdict(set)

    def add(self, visitor: str, socket: WebSocket) -> None:
        self.sockets[visitor].add(socket)

    def remove(self, visitor: str, socket: WebSocket) -> None:
        self.sockets[visitor].discard(socket)
        if not self.sockets[visitor]:
            del self.sockets[visitor]

    async def push(self, visitor: str, frame: dict) -> int:
        sent = 0
        for socket in list(self.sockets.get(visitor, ())):
            try:
                await socket.send_text(json.dumps(frame, ensure_ascii=False))
                sent += 1
            except Exception:  # noqa: BLE001 - a closed tab; its handler removes it
                pass
        return sent


class ReplyFollower:
    """Follows channel.webchat.outbound from the end (every gateway sees every reply) in a thread."""

    def __init__(self, settings: Settings, visitors: Visitors, loop: asyncio.AbstractEventLoop) -> None:
        self.consumer = make_consumer(settings, group_id=f"{settings.app_id}-gateway-{uuid.uuid4().hex[:8]}")
        self.visitors = visitors
        self.loop = loop
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webchat-replies", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            meta = self.consumer.list_topics(OUTBOUND_TOPIC, timeout=10).topics[OUTBOUND_TOPIC]
            self.consumer.assign([TopicPartition(OUTBOUND_TOPIC, p, OFFSET_END) for p in meta.partitions])
        except Exception as exc:  # noqa: BLE001
            log.error("web chat replies unavailable: %s", type(exc).__name__)
            return
        self.ready.set()
        while not self._stop.is_set():
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            try:
                frame = json.loads(msg.value())
            except ValueError:
                log.warning("skipping an unreadable web chat reply at offset %s", msg.offset())
                continue
            asyncio.run_coroutine_threadsafe(self.visitors.push(str(frame.get("to")), frame), self.loop)
        self.consumer.close()

    def stop(self) -> None:
        self._stop.set()
