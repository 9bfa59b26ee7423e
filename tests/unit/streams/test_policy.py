"""The routing policy file: typed, validated, reloaded on change, a broken edit keeps the last good policy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from streams.policy import DEFAULT_POLICY_FILE, PolicyError, PolicyFile, load_policy


def test_shipped_policy_queues_and_priorities() -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    assert policy.queue_for("privacy_request", "en", "HIGH") == "privacy"
    assert policy.queue_for("refund_status", "es", "MEDIUM") == "es-billing"
    assert policy.queue_for("complaint", "es", "HIGH") == "es-priority"
    assert policy.queue_for(None, "fr", "LOW") == "en-general"
    assert policy.priority_for("complaint") == "HIGH" and policy.priority_for("human_request") == "MEDIUM"


def test_policy_reloads_when_the_file_changes_and_survives_a_broken_edit(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    shutil.copyfile(DEFAULT_POLICY_FILE, path)
    policies = PolicyFile(path)
    assert policies.current().min_confidence == 0.6
    path.write_text(path.read_text().replace("min_confidence = 0.6", "min_confidence = 0.8"))
    os.utime(path, ns=(1, 10**18))
    assert policies.current().min_confidence == 0.8
    path.write_text("[answer]\nmin_confidence = 'high'\n")
    os.utime(path, ns=(1, 2 * 10**18))
    assert policies.current().min_confidence == 0.8 and "invalid" in policies.last_error


def test_invalid_values_are_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY_FILE.read_text().replace("min_confidence = 0.6", "min_confidence = 1.5"))
    with pytest.raises(PolicyError, match=r"policy.toml: answer.min_confidence must be within 0..1"):
        load_policy(path)
    path.write_text("not toml [")
    with pytest.raises(PolicyError, match="cannot read the routing policy"):
        load_policy(path)
