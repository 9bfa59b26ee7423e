"""The client's batching, fallback and breaker logic, with Triton replaced by a fake (`_call`); the real
server is exercised in tests/integration/inference."""

import asyncio
from pathlib import Path

import pytest
from tritonclient.utils import InferenceServerException

from inference.client import TritonNlu
from inference.model_repository import ModelRepository
from inference.nlu import NluResult
from inference.releases import Release, Releases
from inference.resilience import BreakerState, CircuitBreaker


class FakeTritonNlu(TritonNlu):
    def __init__(self, tmp_path: Path, fail: bool = False, **kwargs) -> None:
        for version in (1, 2):
            (tmp_path / "intent" / str(version)).mkdir(parents=True, exist_ok=True)
        releases = Releases(ModelRepository(tmp_path))
        super().__init__("127.0.0.1:1", releases, **kwargs)
        self.calls: list[tuple[int, list[str]]] = []
        self.fail = fail

    async def _call(self, texts: list[str], version: int) -> list[NluResult]:
        self.calls.append((version, list(texts)))
        await asyncio.sleep(0)
        if self.fail:
            raise InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")
        return [NluResult("greeting", 0.9, "neutral", 0.0, "es", (), f"intent-{version}") for _ in texts]


def test_concurrent_callers_share_one_request(tmp_path: Path) -> None:
    nlu = FakeTritonNlu(tmp_path, max_wait_s=0.01)

    async def main() -> list[list[NluResult]]:
        return await asyncio.gather(*(nlu.classify_batch([f"hola {i}", f"buenas {i}"], [f"c{i}", f"d{i}"]) for i in range(10)))

    answers = asyncio.run(main())
    assert [len(a) for a in answers] == [2] * 10
    assert len(nlu.calls) == 1 and len(nlu.calls[0][1]) == 20


def test_batches_are_capped_at_max_batch(tmp_path: Path) -> None:
    nlu = FakeTritonNlu(tmp_path, max_batch=8, max_wait_s=0.01)
    answers = asyncio.run(nlu.classify_batch([f"t{i}" for i in range(20)], [f"c{i}" for i in range(20)]))
    assert len(answers) == 20 and [len(t) for _, t in nlu.calls] == [8, 8, 4]


def test_canary_conversations_go_to_their_version(tmp_path: Path) -> None:
    nlu = FakeTritonNlu(tmp_path)
    nlu.releases.save("intent", Release(stable=1, canary=2, canary_share=0.5))
    ids = [f"conv-{i}" for i in range(40)]
    answers = asyncio.run(nlu.classify_batch(["hola"] * 40, ids))
    expected = [f"intent-{Release(1, 2, 0.5).version_for(c)}" for c in ids]
    assert [a.model_version for a in answers] == expected and set(expected) == {"intent-1", "intent-2"}


def test_failures_fall_back_to_not_understood_and_open_the_breaker(tmp_path: Path) -> None:
    nlu = FakeTritonNlu(tmp_path, fail=True, attempts=2, breaker=CircuitBreaker(2, 60.0))
    for _ in range(2):
        answers = asyncio.run(nlu.classify_batch(["hola", "adiós"], ["a", "b"]))
        assert [(a.intent, a.confidence, a.model_version) for a in answers] == [(None, 0.0, "fallback")] * 2
    assert nlu.breaker.state == BreakerState.OPEN and len(nlu.calls) == 4  # 2 batches x 2 attempts
    asyncio.run(nlu.classify_batch(["hola"], ["a"]))
    assert len(nlu.calls) == 4  # breaker open: no call at all


def test_a_bug_in_the_client_still_answers_every_caller(tmp_path: Path) -> None:
    nlu = FakeTritonNlu(tmp_path)

    async def broken(texts: list[str], version: int) -> list[NluResult]:
        raise KeyError("bug")

    nlu.infer = broken  # type: ignore[method-assign]
    answers = asyncio.run(asyncio.wait_for(nlu.classify_batch(["hola"], ["a"]), 5))
    assert answers[0].model_version == "fallback"


@pytest.mark.parametrize("text", ["", "x" * 1_000_000, "\ud800 lone surrogate"])
def test_any_text_is_accepted(tmp_path: Path, text: str) -> None:
    nlu = FakeTritonNlu(tmp_path)
    [answer] = asyncio.run(nlu.classify_batch([text], ["a"]))
    assert answer.intent == "greeting" and len(nlu.calls[0][1][0]) <= 2000
