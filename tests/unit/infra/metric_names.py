"""The metric names Centralita's processes export, read from the code's own Prometheus registry, and the names a
PromQL expression refers to: so rules and dashboards cannot name a metric nobody exports."""

from __future__ import annotations

import importlib
import os
import re

from prometheus_client import REGISTRY

#: Every module that declares metrics.
METRIC_MODULES = ("infra.metrics", "inference.client", "connectors.gateway", "connectors.crm.sink", "streams.normalize",
                  "streams.engine", "streams.metrics")
#: Triton's own metrics the dashboard and rules use (https://docs.nvidia.com/deeplearning/triton-inference-server/
#: user-guide/docs/user_guide/metrics.html), and Prometheus's synthetic `up`.
EXTERNAL = {"up", "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
            "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
            "nv_inference_compute_infer_duration_us", "nv_inference_compute_input_duration_us",
            "nv_inference_compute_output_duration_us", "nv_gpu_utilization", "nv_cpu_utilization"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",), "summary": ("_count", "_sum", "_created"), "info": ("_info",)}
PROMQL_NAME = re.compile(r"\b((?:centralita|nv)_[a-z0-9_]+|up)\b")


def exported_names() -> set[str]:
    before = os.environ.get("CENTRALITA_NLU_BACKEND")
    os.environ["CENTRALITA_NLU_BACKEND"] = "rules"  # importing the engine must not need a server...
    try:
        for module in METRIC_MODULES:
            importlib.import_module(module)
    finally:  # ...and the workers integration tests start later must not inherit the stand-in
        if before is None:
            os.environ.pop("CENTRALITA_NLU_BACKEND", None)
        else:
            os.environ["CENTRALITA_NLU_BACKEND"] = before
    names = set(EXTERNAL)
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def referenced_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label values in quotes are not names)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(PROMQL_NAME.findall(without_strings))
