"""Canary release on a real Triton: a newly trained version loads without a restart, takes its share of
conversations (sticky), and `centralita models promote` / `rollback` move every conversation."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference.client import TritonNlu
from inference.model_repository import ModelRepository
from inference.releases import Releases
from infra.settings import PROJECT_ROOT
from tests.conftest import start_triton

CONVERSATIONS = [f"conv-{i}" for i in range(60)]


def versions_seen(nlu: TritonNlu) -> list[str]:
    async def run() -> list[str]:
        try:
            answers = await nlu.classify_batch(["quiero cancelar mi pedido"] * len(CONVERSATIONS), CONVERSATIONS)
            return [a.model_version for a in answers]
        finally:
            await nlu.close()
    return asyncio.run(run())


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def repository(tmp_path: Path) -> ModelRepository:
    root = tmp_path / "models"
    shutil.copytree(PROJECT_ROOT / "triton_models", root, ignore=shutil.ignore_patterns("release.json"))
    return ModelRepository(root)


def test_train_load_canary_promote_rollback(tmp_path: Path, repository: ModelRepository) -> None:
    server = start_triton(tmp_path / "state", repository.root)
    env = {**os.environ, "CENTRALITA_TRITON_MODEL_REPOSITORY": str(repository.root),
           "CENTRALITA_TRITON_HTTP_PORT": str(server.http_port), "CENTRALITA_STATE_DIR": str(tmp_path / "state")}
    data = tmp_path / "labeled.jsonl"
    rows = [("quiero cancelar mi pedido", "cancel_order", "es"), ("cancel my order", "cancel_order", "en"),
            ("¿dónde está mi pedido?", "order_status", "es"), ("where is my order", "order_status", "en"),
            ("hola buenas", "greeting", "es"), ("hello there", "greeting", "en")] * 5
    data.write_text("\n".join(f'{{"text": "{t}", "intent": "{i}", "language": "{lang}"}}' for t, i, lang in rows) + "\n")
    try:
        stable = repository.latest("intent")
        trained = cli(["train", "intent", "--data", str(data), "--canary-share", "0.5"], env)
        assert trained.returncode == 0, trained.stderr
        new = stable + 1
        assert f"canary {new} (50%)" in trained.stderr and f"Triton reloaded intent: versions [{', '.join(str(v) for v in repository.versions('intent'))}]" in trained.stderr
        nlu = lambda: TritonNlu(server.grpc_address, Releases(repository))  # noqa: E731
        seen = versions_seen(nlu())
        assert set(seen) == {f"intent-{stable}", f"intent-{new}"}
        assert seen == versions_seen(nlu())  # sticky per conversation

        promoted = cli(["models", "promote"], env)
        assert promoted.returncode == 0 and f"version {new} is stable" in promoted.stdout
        assert set(versions_seen(nlu())) == {f"intent-{new}"}

        rolled = cli(["models", "rollback"], env)
        assert rolled.returncode == 0 and f"version {stable} is stable" in rolled.stdout
        assert set(versions_seen(nlu())) == {f"intent-{stable}"}

        status = cli(["models", "status"], env)
        assert status.returncode == 0 and "intent" in status.stdout

        refused = cli(["models", "promote"], env)
        assert refused.returncode == 1 and "no canary to promote" in refused.stderr
    finally:
        server.stop()


def test_train_with_a_bad_file_says_what_is_wrong(tmp_path: Path, repository: ModelRepository) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hola", "intent": "greeting", "language": "es"}\n{"text": 3}\n')
    env = {**os.environ, "CENTRALITA_TRITON_MODEL_REPOSITORY": str(repository.root)}
    result = cli(["train", "intent", "--data", str(bad)], env)
    assert result.returncode == 2 and "bad.jsonl:2: needs text" in result.stderr and "Traceback" not in result.stderr
    assert repository.versions("intent") == ModelRepository().versions("intent")  # nothing written
