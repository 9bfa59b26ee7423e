"""The Grafana dashboard, built here and written to `infra/grafana/centralita.json` (`centralita generate`).

Building it in code keeps every panel's PromQL next to the metric names the processes export and the
recording rules of `infra/prometheus/rules.yml`; the tests evaluate each expression against a real
Prometheus. Import the JSON into Grafana (its datasource is asked on import), or let the Kubernetes
ConfigMap (infra/k8s) load it through Grafana's dashboard sidecar.
"""

from __future__ import annotations

import json

from infra.settings import PROJECT_ROOT

DASHBOARD_FILE = PROJECT_ROOT / "infra" / "grafana" / "centralita.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
RATE = "$__rate_interval"


def quantiles(metric: str, by: str = "", qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[tuple[str, str]]:
    group = f"le{', ' + by if by else ''}"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [(f"p{int(q * 100)}{suffix}", f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))")
            for q in qs]


# (title, unit, kind, [(legend, expr)], description): kind is timeseries | stat | heatmap | bargauge.
ROWS: list[tuple[str, list[tuple[str, str, str, list[tuple[str, str]], str]]]] = [
    ("Customers", [
        ("Reply latency percentiles", "s", "timeseries", quantiles("centralita_engine_reply_latency_seconds"),
         "From the message reaching the worker to its reply (or handoff notice) being published. SLO: 99% within 250 ms."),
        ("Replies within 250 ms (1 h)", "percentunit", "stat", [("within SLO", "1 - slo:reply_latency:slow_ratio_1h")],
         "Share of replies inside the latency SLO over the last hour (target 99%)."),
        ("Inbound messages by channel", "msg/s", "timeseries",
         [("{{channel}}", f"sum by (channel) (rate(centralita_inbound_messages_total[{RATE}]))")],
         "Canonical customer messages after normalization and deduplication."),
        ("Outbound messages by channel", "msg/s", "timeseries",
         [("{{channel}} {{kind}}", f"sum by (channel, kind) (rate(centralita_outbound_messages_total[{RATE}]))")],
         "Formatted for each channel; `blocked` is outside a channel's messaging window."),
        ("Routes", "msg/s", "timeseries", [("{{route}}", f"sum by (route) (rate(centralita_engine_messages_total[{RATE}]))")],
         "answer, clarify, handoff, silent (an agent owns the conversation), csat."),
        ("Escalation rate", "percentunit", "timeseries",
         [("escalations / messages (15 m)", "centralita:escalation_ratio:rate15m"),
          ("same, over 1 d", "centralita:escalation_ratio:rate1d")],
         "Conversations handed to a person per message handled."),
        ("Escalations by reason", "1/s", "timeseries",
         [("{{reason}}", f"sum by (reason) (rate(centralita_engine_escalations_total[{RATE}]))")], ""),
        ("First-contact resolution (1 d)", "percentunit", "stat", [("FCR", "centralita:first_contact_resolution:ratio1d")],
         "Sessions the bot closed without handoff and without the customer coming back within 24 h, over all closed sessions."),
        ("CSAT (1 d average)", "none", "stat", [("CSAT", "centralita:csat:avg1d")], "Customer satisfaction answers, 1 to 5."),
        ("CSAT answers", "none", "bargauge",
         [("{{le}}", "sum by (le) (increase(centralita_engine_csat_score_bucket[1d]))")], "Cumulative count of answers up to each score."),
    ]),
    ("Inference", [
        ("Intent confidence", "percentunit", "timeseries",
         [("p10", f"histogram_quantile(0.1, sum by (le) (rate(centralita_engine_intent_confidence_bucket[{RATE}])))"),
          ("p50", f"histogram_quantile(0.5, sum by (le) (rate(centralita_engine_intent_confidence_bucket[{RATE}])))")],
         "Low confidence means clarifying questions; a drop after a release points at the model."),
        ("Confidence distribution", "short", "heatmap",
         [("{{le}}", "sum by (le) (increase(centralita_engine_intent_confidence_bucket[$__interval]))")], ""),
        ("Model-version split", "1/s", "timeseries",
         [("intent v{{model_version}}", f"sum by (model_version) (rate(centralita_nlu_predictions_total[{RATE}]))")],
         "Texts classified per intent model version: the canary's share of conversations."),
        ("Median confidence by model version", "percentunit", "timeseries",
         quantiles("centralita_nlu_confidence", by="model_version", qs=(0.5,)), ""),
        ("Inference call latency", "s", "timeseries", quantiles("centralita_nlu_call_seconds", qs=(0.5, 0.99)),
         "One batched call to Triton (all three models)."),
        ("Fallbacks and breaker", "1/s", "timeseries",
         [("fallback {{reason}}", f"sum by (reason) (rate(centralita_nlu_fallbacks_total[{RATE}]))"),
          ("breaker state (0 closed, 2 open)", "max(centralita_nlu_breaker_state)")],
         "Texts answered 'not understood' because Triton failed, was slow, or the breaker was open."),
        ("Triton requests by model", "req/s", "timeseries",
         [("{{model}} v{{version}}", f"sum by (model, version) (rate(nv_inference_request_success[{RATE}]))"),
          ("{{model}} failed", f"sum by (model) (rate(nv_inference_request_failure[{RATE}]))")], "Triton's own metrics."),
        ("Triton queue and compute time per request", "µs", "timeseries",
         [("{{model}} queue", f"sum by (model) (rate(nv_inference_queue_duration_us[{RATE}])) / sum by (model) (rate(nv_inference_request_success[{RATE}]))"),
          ("{{model}} compute", f"sum by (model) (rate(nv_inference_compute_infer_duration_us[{RATE}])) / sum by (model) (rate(nv_inference_request_success[{RATE}]))")],
         "Dynamic batching trades a little queue time for much less compute per text."),
        ("Triton batch size", "short", "timeseries",
         [("{{model}}", f"sum by (model) (rate(nv_inference_count[{RATE}])) / sum by (model) (rate(nv_inference_exec_count[{RATE}]))")],
         "Texts per model execution."),
    ]),
    ("Pipeline health", [
        ("Consumer lag", "short", "timeseries", [("{{job}} {{topic}}", "max by (job, topic) (centralita_consumer_lag)")],
         "Messages not yet read; KEDA scales the workers on it."),
        ("Dead letters", "1/s", "timeseries",
         [("inbound {{source}}", f"sum by (source) (rate(centralita_inbound_dead_letters_total[{RATE}]))"),
          ("engine {{topic}}", f"sum by (topic) (rate(centralita_engine_dead_letters_total[{RATE}]))"),
          ("outbound {{topic}}", f"sum by (topic) (rate(centralita_outbound_dead_letters_total[{RATE}]))"),
          ("crm {{reason}}", f"sum by (reason) (rate(centralita_crm_dead_letters_total[{RATE}]))")],
         "Events on a <topic>.dlq topic, the reason in its headers."),
        ("Gateway webhooks", "req/s", "timeseries",
         [("{{source}} {{outcome}}", f"sum by (source, outcome) (rate(centralita_gateway_webhooks_total[{RATE}]))")], ""),
        ("Gateway publish latency (p99)", "s", "timeseries", quantiles("centralita_gateway_publish_seconds", by="source", qs=(0.99,)),
         "Until Kafka acknowledged the raw event (acks=all)."),
        ("CRM cases written", "1/s", "timeseries",
         [("{{result}}", f"sum by (result) (rate(centralita_crm_cases_written_total[{RATE}]))"),
          ("transient errors", f"sum(rate(centralita_crm_transient_errors_total[{RATE}]))")], ""),
        ("CRM job duration (p99)", "s", "timeseries", quantiles("centralita_crm_job_seconds", qs=(0.99,)), ""),
        ("Targets up", "short", "stat", [("{{job}}", 'sum by (job) (up{job=~"centralita-.*|triton"})')],
         "Scraped processes per job."),
    ]),
]


def panel(panel_id: int, title: str, unit: str, kind: str, queries: list[tuple[str, str]], description: str,
          x: int, y: int) -> dict:
    width = 6 if kind == "stat" else 12
    return {
        "id": panel_id, "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     **({"format": "heatmap"} if kind in ("heatmap", "bargauge") else {})}
                    for i, (legend, expr) in enumerate(queries)],
    }


def build_dashboard() -> dict:
    panels, panel_id, y = [], 1, 0
    for row_title, row_panels in ROWS:
        panels.append({"id": panel_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id, y, x = panel_id + 1, y + 1, 0
        for title, unit, kind, queries, description in row_panels:
            width = 6 if kind == "stat" else 12
            if x + width > 24:
                x, y = 0, y + 8
            panels.append(panel(panel_id, title, unit, kind, queries, description, x, y))
            panel_id, x = panel_id + 1, x + width
        y += 8
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus"}],
        "uid": "centralita-overview", "title": "Centralita", "tags": ["centralita"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]},
        "annotations": {"list": []}, "panels": panels,
    }


def expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    return [(p["title"], t["expr"]) for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]


def render() -> str:
    return json.dumps(build_dashboard(), indent=2, ensure_ascii=False) + "\n"
