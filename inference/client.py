"""The Triton inference client the conversation engine uses: `TritonNlu`, an implementation of `Nlu`.

- Micro-batching across concurrent callers: texts wait at most `max_wait` for others (up to `max_batch`)
  and go to Triton as one request per model; Triton's dynamic batcher then merges requests of several
  workers. Texts of one batch share a model version (canary routing decides per conversation).
- Each batch asks `intent` (the release's version), `sentiment` and `entities` concurrently over async
  gRPC, with a deadline per attempt, retries with full-jitter backoff, and a circuit breaker.
- Fallback: when Triton is down, slow or the breaker is open, the texts get `NluResult.not_understood`
  (model_version 'fallback'), so the conversation is routed as not understood and nothing waits or is lost.
- Prometheus metrics: call latency, batch sizes, errors by kind, breaker state, fallbacks, predictions per
  model version and intent, confidence per version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import tritonclient.grpc.aio as grpcclient
from prometheus_client import Counter, Gauge, Histogram
from tritonclient.utils import InferenceServerException

from inference.entities import Entity
from inference.model_repository import ModelRepository
from inference.nlu import NluResult
from inference.releases import Release, Releases
from inference.resilience import CircuitBreaker, backoff_s
from inference.text import clip
from infra.settings import Settings

log = logging.getLogger(__name__)

CALL_SECONDS = Histogram("centralita_nlu_call_seconds", "Latency of one batched call to Triton (all models)", ["outcome"],
                         buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2))
BATCH_SIZE = Histogram("centralita_nlu_batch_size", "Texts per request the client sends to Triton",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
ERRORS = Counter("centralita_nlu_errors_total", "Failed attempts to call Triton", ["kind"])
FALLBACKS = Counter("centralita_nlu_fallbacks_total", "Texts answered by the fallback (not understood)", ["reason"])
BREAKER = Gauge("centralita_nlu_breaker_state", "Circuit breaker toward Triton: 0 closed, 1 half-open, 2 open")
PREDICTIONS = Counter("centralita_nlu_predictions_total", "Texts classified, per intent model version and intent",
                      ["model_version", "intent"])
CONFIDENCE = Histogram("centralita_nlu_confidence", "Intent confidence per model version", ["model_version"],
                       buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))


class TritonUnavailable(RuntimeError):
    """Every attempt of a call failed (the message names the error kind, never the texts)."""


@dataclass
class _Pending:
    texts: list[str] = field(default_factory=list)
    futures: list[asyncio.Future] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class TritonNlu:
    """`inference.nlu.Nlu` over Triton. One instance per process; safe for concurrent callers."""

    def __init__(self, url: str, releases: Releases, *, timeout_s: float = 0.5, attempts: int = 2, max_batch: int = 64,
                 max_wait_s: float = 0.003, breaker: CircuitBreaker | None = None, release_ttl_s: float = 1.0) -> None:
        self.url = url
        self.releases = releases
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.breaker = breaker or CircuitBreaker(5, 10.0, on_change=lambda s: BREAKER.set(int(s)))
        self.release_ttl_s = release_ttl_s
        self._release: tuple[float, Release] | None = None
        self._pending: dict[int, _Pending] = {}
        self._client: grpcclient.InferenceServerClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "TritonNlu":
        breaker = CircuitBreaker(settings.nlu_breaker_failures, settings.nlu_breaker_reset_s,
                                 on_change=lambda s: BREAKER.set(int(s)))
        return cls(settings.triton_address, Releases(ModelRepository(settings.triton_model_repository)),
                   timeout_s=settings.nlu_timeout_s, attempts=settings.nlu_attempts, max_batch=settings.nlu_max_batch,
                   max_wait_s=settings.nlu_max_wait_s, breaker=breaker)

    # -- the Nlu interface --------------------------------------------------------------------------------

    async def classify_batch(self, texts: Sequence[str], conversation_ids: Sequence[str]) -> list[NluResult]:
        release = self.release()
        futures = [self._submit(text, release.version_for(cid)) for text, cid in zip(texts, conversation_ids)]
        return list(await asyncio.gather(*futures))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- canary release ------------------------------------------------------------------------------------

    def release(self) -> Release:
        """The intent model's release, re-read at most every `release_ttl_s` (promote/rollback apply live)."""
        now = time.monotonic()
        if self._release is None or now - self._release[0] >= self.release_ttl_s:
            try:
                self._release = (now, self.releases.get("intent"))
            except (OSError, ValueError, TypeError) as error:
                if self._release is None:
                    raise
                log.warning("cannot read the intent release (%s); keeping version %s", type(error).__name__,
                            self._release[1].stable)
                self._release = (now, self._release[1])
        return self._release[1]

    # -- micro-batching ------------------------------------------------------------------------------------

    def _submit(self, text: str, version: int) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        pending = self._pending.setdefault(version, _Pending())
        pending.texts.append(clip(text or ""))
        pending.futures.append(future)
        if len(pending.texts) >= self.max_batch:
            self._flush(version)
        elif pending.timer is None:
            pending.timer = loop.call_later(self.max_wait_s, self._flush, version)
        return future

    def _flush(self, version: int) -> None:
        pending = self._pending.pop(version, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        asyncio.get_running_loop().create_task(self._answer(version, pending))

    async def _answer(self, version: int, pending: _Pending) -> None:
        """Resolve every caller's future, whatever happens: a caller must never wait forever."""
        try:
            results = await self.infer(pending.texts, version)
        except Exception as error:  # noqa: BLE001 - a bug here must degrade to the fallback, not hang the engine
            log.exception("inference client failed (%s); routing %d texts as not understood", type(error).__name__,
                          len(pending.texts))
            FALLBACKS.labels("client_error").inc(len(pending.texts))
            results = [NluResult.not_understood() for _ in pending.texts]
        for future, result in zip(pending.futures, results):
            if not future.done():
                future.set_result(result)

    # -- calls to Triton -----------------------------------------------------------------------------------

    async def infer(self, texts: list[str], version: int) -> list[NluResult]:
        """One batched call (three models), with retries and the breaker; the fallback never raises."""
        BATCH_SIZE.observe(len(texts))
        if not self.breaker.allow():
            FALLBACKS.labels("breaker_open").inc(len(texts))
            return [NluResult.not_understood() for _ in texts]
        started = time.perf_counter()
        for attempt in range(self.attempts):
            try:
                results = await self._call(texts, version)
            except (InferenceServerException, asyncio.TimeoutError, OSError) as error:
                ERRORS.labels(_error_kind(error)).inc()
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(backoff_s(attempt))
                continue
            self.breaker.record_success()
            CALL_SECONDS.labels("ok").observe(time.perf_counter() - started)
            for result in results:
                PREDICTIONS.labels(result.model_version, result.intent or "none").inc()
                CONFIDENCE.labels(result.model_version).observe(result.confidence)
            return results
        self.breaker.record_failure()
        CALL_SECONDS.labels("failed").observe(time.perf_counter() - started)
        FALLBACKS.labels("triton_failed").inc(len(texts))
        log.warning("Triton failed %d times for a batch of %d texts; routing them as not understood",
                    self.attempts, len(texts))
        return [NluResult.not_understood() for _ in texts]

    def _grpc(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            self._client = grpcclient.InferenceServerClient(self.url)
        return self._client

    async def _model(self, model: str, texts: list[str], outputs: Sequence[str], version: int | None = None) -> dict[str, np.ndarray]:
        data = np.array([[t.encode("utf-8", errors="replace")] for t in texts], dtype=np.object_)
        tensor = grpcclient.InferInput("TEXT", list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        response = await asyncio.wait_for(
            self._grpc().infer(model, [tensor], model_version=str(version or ""),
                               outputs=[grpcclient.InferRequestedOutput(o) for o in outputs], client_timeout=self.timeout_s),
            self.timeout_s + 0.1)
        return {o: response.as_numpy(o).reshape(-1) for o in outputs}

    async def _call(self, texts: list[str], version: int) -> list[NluResult]:
        intent, sentiment, entities = await asyncio.gather(
            self._model("intent", texts, ("INTENT", "CONFIDENCE", "LANGUAGE"), version),
            self._model("sentiment", texts, ("LABEL", "SCORE")),
            self._model("entities", texts, ("ENTITIES",)))
        return [_result(intent, sentiment, entities, i, f"intent-{version}") for i in range(len(texts))]


def _text(value: bytes) -> str | None:
    return value.decode() or None


def _result(intent: dict, sentiment: dict, entities: dict, i: int, model_version: str) -> NluResult:
    found = tuple(Entity(**e) for e in json.loads(entities["ENTITIES"][i]))
    label = _text(intent["INTENT"][i])
    return NluResult(label, round(float(intent["CONFIDENCE"][i]), 4) if label else 0.0, sentiment["LABEL"][i].decode(),
                     round(float(sentiment["SCORE"][i]), 3), _text(intent["LANGUAGE"][i]), found, model_version)


def _error_kind(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, InferenceServerException):
        status = (error.status() or "").lower()
        if "deadline" in status or "deadline" in str(error.message()).lower():
            return "timeout"
        return "unavailable" if "unavailable" in status else "server"
    return "connection"
