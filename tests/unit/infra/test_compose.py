"""The docker-compose stack and its images, checked offline (no Docker engine here): the compose file against the
Compose Specification's JSON schema (from compose-go, fetched by the bootstrap), and everything it points at
exists: build contexts, Dockerfiles and what they copy, mounted files, `centralita` subcommands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from infra.cli import main as cli
from infra.settings import PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "infra" / "docker-compose.yml"
SCHEMA = Settings().cache_dir / "schemas" / "compose-spec.json"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    assert SCHEMA.exists(), "run ./infra/bootstrap.sh (it fetches the Compose schema with the Go module proxy)"
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(compose(), schema)
    broken = {**compose(), "services": {"x": {"image": "a", "ports": "8080"}}}
    try:
        jsonschema.validate(broken, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("the schema accepted a service whose ports is not a list")


def test_builds_mounts_and_commands_exist() -> None:
    services = compose()["services"]
    assert {"kafka", "triton", "worker", "gateway", "crm-sink", "salesforce-emulator", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        if "build" in service:
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.exists(), (name, dockerfile)
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY ") and "--from" not in line:
                    for source in line.split()[1:-1]:
                        assert (context / source).exists(), (name, source)
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("."):
                assert (COMPOSE.parent / host).exists(), (name, host)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        if image.startswith("ghcr.io/centralita/centralita"):
            assert service["command"][0] in cli.commands, (name, service["command"])


def test_prometheus_in_compose_scrapes_the_jobs_the_rules_expect() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "infra" / "docker" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    rules = (PROJECT_ROOT / "infra" / "prometheus" / "rules.yml").read_text()
    assert set(re.findall(r'job="([a-z-]+)"', rules)) <= jobs
