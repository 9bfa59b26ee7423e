"""Prometheus `/metrics` of a stream worker, served by the worker's own web server (bind host, web port).

Metrics (no personal data in any label): reply latency, messages by channel/intent/route, escalations by
reason, sessions closed by who resolved them, repeat contacts within 24 h (first-contact resolution is
closed-by-bot minus repeat contacts, over closed), CSAT answers, intent confidence, normalized/duplicate/
ignored/dead-lettered inbound events, outbound messages by channel, and consumer lag per topic.
"""

from __future__ import annotations

from infra.metrics import exposition, set_consumer_lag
from streams.app import app


@app.page("/metrics")
async def metrics(web, request):
    # The text exposition format; aiohttp takes the charset separately, so only the media type goes here.
    body, _ = exposition()
    return web.bytes(body, content_type="text/plain")


@app.page("/healthz")
async def healthz(web, request):
    """Liveness and readiness for Kubernetes: the web server answers once the worker runs; 503 while the
    consumer group rebalances (partitions are being moved, nothing is consumed)."""
    if app.rebalancing:
        return web.json({"status": "rebalancing"}, status=503)
    return web.json({"status": "ok"})


@app.timer(interval=10.0)
async def measure_lag() -> None:
    """highwater - next offset to read, summed per topic over the partitions this worker owns."""
    consumer = app.consumer
    lag: dict[str, int] = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        position = consumer._read_offset.get(tp)  # noqa: SLF001 - Faust keeps the last read offset here
        if highwater is None or highwater < 0:
            continue
        next_offset = (position + 1) if position is not None and position >= 0 else 0
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - next_offset)
    set_consumer_lag(lag)
