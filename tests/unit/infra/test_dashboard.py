"""The Grafana dashboard: in sync with its builder, every query valid PromQL (promtool) naming only exported
metrics or recording rules, and the panels operators need are there."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from infra.dashboard import DASHBOARD_FILE, build_dashboard, expressions, render
from tests.unit.infra.metric_names import exported_names, referenced_names
from tests.unit.infra.test_prometheus_rules import RULES, promtool

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def concrete(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_committed_json_is_what_the_builder_makes() -> None:
    assert DASHBOARD_FILE.read_text(encoding="utf-8") == render(), "run `centralita generate` and commit the result"
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${DS_PROMETHEUS}" and p["targets"], p["title"]


def test_every_query_is_valid_promql(tmp_path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query:{i}", "expr": concrete(expr)}
                                                         for i, (_, expr) in enumerate(expressions(build_dashboard()))]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_name_only_exported_metrics_and_recorded_series() -> None:
    exported = exported_names()
    recorded = {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r}
    for title, expr in expressions(build_dashboard()):
        assert not referenced_names(expr) - exported, (title, referenced_names(expr) - exported)
        for name in re.findall(r"\b[a-z_]+:[a-z0-9_:]+\b", expr):
            assert name in recorded, (title, name)


def test_the_panels_operators_asked_for_are_there() -> None:
    exprs = " ".join(expr for _, expr in expressions(build_dashboard()))
    for metric in ("centralita_engine_reply_latency_seconds_bucket",  # latency percentiles
                   "centralita_inbound_messages_total",  # throughput by channel
                   "centralita:escalation_ratio:rate15m", "centralita:first_contact_resolution:ratio1d", "centralita:csat:avg1d",
                   "centralita_engine_intent_confidence_bucket", "centralita_nlu_predictions_total",  # model-version split
                   "centralita_consumer_lag", "nv_inference_request_success"):
        assert metric in exprs, metric
    split = [e for _, e in expressions(build_dashboard()) if "centralita_nlu_predictions_total" in e]
    assert any("model_version" in e for e in split)
