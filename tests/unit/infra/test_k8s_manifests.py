"""The Kubernetes manifests, validated offline (no cluster here): `kustomize build` of the base and each overlay,
every built-in object against the Kubernetes OpenAPI schemas in strict mode (kubernetes-validate), every custom
resource against its operator's schema (Strimzi, KEDA, External Secrets, prometheus-operator; kubernetes-models
via Node), and what the manifests must say for Centralita to run as designed."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import lru_cache
import kubernetes_validate
import pytest
import yaml

from infra.kafka_acls import component_access
from infra.manifests import K8S_DIR, RULES_FILE, stale_files
from infra.settings import Settings
from schemas.topics import CATALOG, topic

KUBERNETES_VERSION = "1.33"  # the oldest release the manifests promise to work on (CronJob timeZone, PSA labels)
VALIDATOR = K8S_DIR / "validate"
VARIANTS = ("base", "overlays/cpu", "overlays/production")


def kustomize() -> str:
    cached = Settings().cache_dir / "bin" / "kustomize"
    path = str(cached) if cached.exists() else shutil.which("kustomize")
    assert path, "kustomize not found: ./infra/bootstrap.sh installs it (make test does)"
    return path


@lru_cache(maxsize=None)
def built(variant: str) -> str:
    result = subprocess.run([kustomize(), "build", str(K8S_DIR / variant)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(variant: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(built(variant)) if d]


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


def is_builtin(doc: dict) -> bool:
    group = doc["apiVersion"].rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


def test_generated_manifests_are_up_to_date() -> None:
    assert stale_files() == [], "run `centralita generate` and commit the result"


@pytest.mark.parametrize("variant", VARIANTS)
def test_builtin_objects_match_the_kubernetes_schemas_strictly(variant: str) -> None:
    builtins = [d for d in documents(variant) if is_builtin(d)]
    assert len(builtins) > 30
    for doc in builtins:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}") from None


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_matches_its_schema(variant: str) -> None:
    assert (VALIDATOR / "node_modules").is_dir(), "run ./infra/bootstrap.sh (npm ci in infra/k8s/validate)"
    result = subprocess.run(["node", str(VALIDATOR / "validate.mjs")], input=built(variant), capture_output=True,
                            text=True, cwd=VALIDATOR)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    failures = [line for line in lines if line.get("ok") is False]
    assert result.returncode == 0 and not failures, failures or result.stderr
    assert lines[-1]["documents"] == len(documents(variant))


def test_the_validator_refuses_bad_custom_resources() -> None:
    bad = "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: t}\nspec: {partitions: six}\n" \
          "---\napiVersion: example.com/v1\nkind: Unknown\nmetadata: {name: u}\n"
    result = subprocess.run(["node", str(VALIDATOR / "validate.mjs")], input=bad, capture_output=True, text=True, cwd=VALIDATOR)
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1]) == {"documents": 2, "failed": 2}


def test_kafka_topics_are_the_catalog_and_users_the_acl_list() -> None:
    docs = documents("base")
    topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    assert set(topics) == {spec.name for spec in CATALOG}
    for name, spec in topics.items():
        assert spec["partitions"] == topic(name).partitions and spec["replicas"] == 3
        assert spec["config"]["cleanup.policy"] == topic(name).cleanup_policy
    users = {d["metadata"]["name"] for d in docs if d["kind"] == "KafkaUser"}
    assert users == {a.component for a in component_access(Settings())}
    kafka = find(docs, "Kafka", "centralita")
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(listener["tls"] and listener["authentication"]["type"] == "scram-sha-512" for listener in listeners)


def containers(doc: dict) -> list[dict]:
    spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]["template"]["spec"]
    return spec["containers"]


def test_workloads_are_probed_bounded_and_locked_down() -> None:
    docs = documents("base")
    workloads = [d for d in docs if d["kind"] in ("Deployment", "CronJob")]
    assert {d["metadata"]["name"] for d in workloads} == {"triton", "centralita-worker", "centralita-gateway",
                                                          "centralita-crm-sink", "centralita-anonymize"}
    for doc in workloads:
        for container in containers(doc):
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], doc["metadata"]["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert not container["image"].endswith(":latest") and ":" in container["image"]
            for env in container.get("env", []):
                if any(word in env["name"] for word in ("SECRET", "TOKEN", "PASSWORD", "KEY")):
                    assert "valueFrom" in env or env["name"].endswith("_FILE"), f"{env['name']} must come from a secret"
            if doc["kind"] == "Deployment":
                assert container["readinessProbe"] and container["livenessProbe"], doc["metadata"]["name"]
    settings = find(docs, "ConfigMap", "centralita-settings")["data"]
    assert not any(word in key for key in settings for word in ("SECRET", "TOKEN")) and "CENTRALITA_KAFKA_SASL_PASSWORD" not in settings


def test_triton_has_a_gpu_in_the_base_and_none_on_cpu() -> None:
    gpu = containers(find(documents("base"), "Deployment", "triton"))[0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1 and "--model-config-name=gpu" in gpu["args"]
    assert gpu["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    cpu = containers(find(documents("overlays/cpu"), "Deployment", "triton"))[0]
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]
    assert not any(a.startswith("--model-config-name") for a in cpu["args"])
    assert "--model-repository=/models" in cpu["args"]


def test_workers_scale_on_lag_up_to_the_partition_count() -> None:
    scaled = find(documents("base"), "ScaledObject", "centralita-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "centralita-worker"
    assert scaled["spec"]["maxReplicaCount"] <= topic("conversation.inbound").partitions
    lag_topics = {t["metadata"]["topic"] for t in scaled["spec"]["triggers"] if t["type"] == "kafka"}
    assert "conversation.inbound" in lag_topics
    assert {t["metadata"]["consumerGroup"] for t in scaled["spec"]["triggers"]} == {Settings().app_id}


def test_network_policies_deny_by_default_and_secrets_are_external() -> None:
    docs = documents("base")
    deny = find(docs, "NetworkPolicy", "default-deny")
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    external = {d["spec"]["target"]["name"] for d in docs if d["kind"] == "ExternalSecret"}
    referenced = set()
    for doc in docs:
        if doc["kind"] in ("Deployment", "CronJob"):
            spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]["template"]["spec"]
            referenced |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
            for container in spec["containers"]:
                referenced |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e
                               and "secretKeyRef" in e["valueFrom"]}
    strimzi = {a.component for a in component_access(Settings())} | {"centralita-cluster-ca-cert"}
    assert referenced <= external | strimzi, referenced - external - strimzi
    plain = [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"]
    assert plain == ["centralita-autoscaler-username"]  # a user name, not a secret


def test_rules_and_dashboard_are_shipped_to_the_cluster() -> None:
    docs = documents("base")
    rule = find(docs, "PrometheusRule", "centralita")
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())
    dashboard = find(docs, "ConfigMap", "centralita-grafana-dashboard")
    assert json.loads(dashboard["data"]["centralita.json"])["uid"] == "centralita-overview"
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert {"triton"} <= {m["metadata"]["name"] for m in monitors}
