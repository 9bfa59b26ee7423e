"""Prometheus metrics shared by every process, and how a process without a web server exposes `/metrics`.

Each long-running process serves the text exposition format: the worker on its Faust web port, the gateway and
the Salesforce emulator on their own HTTP apps, the CRM sink on `CENTRALITA_CRM_METRICS_PORT`; Triton serves
its own (`nv_inference_*`) on its metrics port. Prometheus tells them apart by the scrape job
(infra/prometheus/prometheus.yml, the ServiceMonitors in infra/k8s), so metric names carry no process name
where the meaning is the same, as for consumer lag.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest, start_http_server

CONSUMER_LAG = Gauge("centralita_consumer_lag", "Messages not yet read, per topic, over the partitions this process owns",
                     ["topic"])


def exposition() -> tuple[bytes, str]:
    """The current metrics in the text format, and its content type, for a process's own HTTP app."""
    return generate_latest(), CONTENT_TYPE_LATEST


def serve_metrics(port: int, host: str) -> None:
    """`/metrics` on a background thread (for a process without a web server of its own)."""
    start_http_server(port, addr=host)


def set_consumer_lag(lag_by_topic: dict[str, int]) -> None:
    for topic, value in lag_by_topic.items():
        CONSUMER_LAG.labels(topic).set(value)
