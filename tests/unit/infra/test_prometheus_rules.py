"""Alerting and recording rules: valid for Prometheus (`promtool check rules`), behaving as their unit tests say
(`promtool test rules`, Debian's prometheus package, installed by the README's test command), and naming only
metrics the code exports."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from infra.settings import PROJECT_ROOT
from tests.unit.infra.metric_names import exported_names, referenced_names

RULES = PROJECT_ROOT / "infra" / "prometheus" / "rules.yml"
RULE_TESTS = PROJECT_ROOT / "infra" / "prometheus" / "tests" / "rules_test.yml"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: ./infra/bootstrap.sh installs Debian's prometheus package (make test does)"
    return path


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass() -> None:
    result = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_is_caught() -> None:
    """The checks above can fail: promtool refuses an expression that does not parse."""
    broken = RULES.parent / "tests" / ".broken-rules.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(centralita_engine_messages_total[5m])\n")
    try:
        result = subprocess.run([promtool(), "check", "rules", str(broken)], capture_output=True, text=True)
    finally:
        broken.unlink()
    assert result.returncode != 0


def test_every_alert_covers_the_issue_and_is_documented() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    for required in ("CentralitaReplyLatencyBudgetBurnFast", "CentralitaErrorRateHigh", "CentralitaConsumerLagHigh",
                     "CentralitaDeadLettersGrowing", "CentralitaEscalationSpike", "CentralitaTritonDown",
                     "CentralitaCrmSinkFailing"):
        assert required in alerts
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"], name
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    exercised = {case["alertname"] for test in tested for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert set(alerts) <= exercised, f"alerts never shown firing in rules_test.yml: {set(alerts) - exercised}"


def test_rules_name_only_exported_metrics() -> None:
    exported = exported_names()
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    for group in groups:
        for rule in group["rules"]:
            unknown = referenced_names(rule["expr"]) - exported
            assert not unknown, f"{rule.get('alert') or rule.get('record')} names metrics nobody exports: {unknown}"
            for name in re.findall(r"\b[a-z_]+:[a-z0-9_:]+\b", rule["expr"]):
                assert name in recorded, f"{name} is not a recording rule"
