"""Triton benchmark: throughput and p50/p99 latency of the `intent` model at concurrency 1..32, with Triton's
dynamic batching and without it, in one run on one server; then the client's micro-batching against one
request per message.

A dedicated Triton is started on free ports with a copy of the stable `intent` version served twice: as
`intent` (the shipped config, dynamic batching) and as `intent_unbatched` (the same config without the
dynamic_batching block, so each request runs alone). Closed-loop load: N concurrent callers, each sending
one text and waiting for the answer, for a fixed time. The target is read at the same p99 budget: the best
unbatched throughput sets the budget (its p99), and batching must reach >= 4x that throughput within it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as grpcclient

from inference.client import TritonNlu
from inference.model_repository import ModelRepository
from inference.releases import Releases
from inference.triton_server import TritonServer
from infra.processes import free_port
from infra.settings import get_settings
from tests.bench.plots import save_figure
from tests.bench.stats import rate_and_latency

DESCRIPTION = "intent model throughput and p50/p99 at concurrency 1..32, Triton dynamic batching vs none; client micro-batching"
TEXTS = ["hola, ¿dónde está mi pedido 4711?", "quiero cancelar mi pedido 5521", "can I change the delivery address?",
         "no me ha llegado el reembolso", "gracias", "my card payment failed", "¿cuándo llega?",
         "I want to talk to a person", "me habéis cobrado dos veces", "forgot my password"]


def bench_repository(root: Path) -> ModelRepository:
    """A repository with the stable intent version as `intent` and as `intent_unbatched`, plus the others."""
    source = ModelRepository()
    stable = Releases(source).get("intent").stable
    for model in ("intent", "sentiment", "entities"):
        shutil.copytree(source.root / model, root / model, ignore=shutil.ignore_patterns("release.json", "configs"))
    unbatched = root / "intent_unbatched"
    shutil.copytree(source.version_dir("intent", stable), unbatched / "1")
    config = (source.root / "intent" / "config.pbtxt").read_text().replace('name: "intent"', 'name: "intent_unbatched"')
    config = re.sub(r"dynamic_batching \{.*?\n\}\n", "", config, flags=re.S)
    (unbatched / "config.pbtxt").write_text(config)
    (root / "intent" / "release.json").write_text(f'{{"stable": {stable}}}')
    return ModelRepository(root)


async def closed_loop(address: str, model: str, concurrency: int, seconds: float) -> dict:
    """`concurrency` callers, one text per request, back to back for `seconds`."""
    client = grpcclient.InferenceServerClient(address)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            data = np.array([[TEXTS[i % len(TEXTS)].encode()]], dtype=np.object_)
            tensor = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
            tensor.set_data_from_numpy(data)
            started = time.perf_counter()
            await client.infer(model, [tensor])
            latencies.append(time.perf_counter() - started)
            i += concurrency

    await caller(0)  # warm-up request
    latencies.clear()
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return rate_and_latency(latencies, elapsed, "requests_per_s")


async def client_load(address: str, repository: ModelRepository, max_batch: int, callers: int, seconds: float) -> dict:
    """`callers` concurrent engine-like callers, one message each per call, through TritonNlu."""
    nlu = TritonNlu(address, Releases(repository), max_batch=max_batch, max_wait_s=0.002, timeout_s=5.0)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            [result] = await nlu.classify_batch([TEXTS[i % len(TEXTS)]], [f"conv-{i}"])
            assert result.model_version != "fallback", "Triton did not answer"
            latencies.append(time.perf_counter() - started)
            i += callers

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    elapsed = time.perf_counter() - started
    await nlu.close()
    return rate_and_latency(latencies, elapsed, "messages_per_s")


def at_same_budget(batched: dict, unbatched: dict) -> dict:
    """Best unbatched throughput and its p99 (the budget); best batched throughput with p99 within it."""
    best_unbatched = max(unbatched.values(), key=lambda r: r["requests_per_s"])
    budget = best_unbatched["p99_ms"]
    within = [r for r in batched.values() if r["p99_ms"] <= budget]
    best_batched = max((r["requests_per_s"] for r in within), default=0.0)
    return {"p99_budget_ms": budget, "unbatched_requests_per_s": best_unbatched["requests_per_s"],
            "batched_requests_per_s": best_batched,
            "speedup": round(best_batched / best_unbatched["requests_per_s"], 2) if best_unbatched["requests_per_s"] else None}


def run(quick: bool = False) -> dict:
    seconds = 1.5 if quick else 6.0
    levels = (1, 4, 32) if quick else (1, 2, 4, 8, 16, 32)
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as tmp:
        repository = bench_repository(Path(tmp) / "models")
        server = TritonServer(free_port(), free_port(), free_port(), repository.root, Path(tmp) / "state",
                              get_settings().cache_dir)
        server.start()
        try:
            import tritonclient.http as httpclient

            httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}").load_model("intent_unbatched")
            results: dict[str, dict] = {"dynamic_batching": {}, "no_batching": {}}
            for concurrency in levels:
                results["dynamic_batching"][str(concurrency)] = asyncio.run(closed_loop(server.grpc_address, "intent", concurrency, seconds))
                results["no_batching"][str(concurrency)] = asyncio.run(closed_loop(server.grpc_address, "intent_unbatched", concurrency, seconds))
            callers = 32
            client = {"micro_batching": asyncio.run(client_load(server.grpc_address, repository, 64, callers, seconds)),
                      "one_request_per_message": asyncio.run(client_load(server.grpc_address, repository, 1, callers, seconds))}
        finally:
            server.stop()
    comparison = at_same_budget(results["dynamic_batching"], results["no_batching"])
    top = str(max(levels))
    return {"bench": "triton", "unit": "requests/s", "seconds_per_point": seconds, "quick": quick,
            "results": {"dynamic_batching_c32": results["dynamic_batching"][top]["requests_per_s"],
                        "no_batching_c32": results["no_batching"][top]["requests_per_s"],
                        "client_micro_batching_msg_per_s": client["micro_batching"]["messages_per_s"],
                        "client_one_request_per_message_msg_per_s": client["one_request_per_message"]["messages_per_s"]},
            "at_same_p99_budget": comparison, "target": "batched >= 4x unbatched throughput at the same p99 budget",
            "concurrency": results, "client": {**client, "callers": callers}, "plot": plot(results, client)}


def plot(results: dict, client: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    for (name, points), color in zip(results.items(), ("#3b7dd8", "#e07b39")):
        levels = [int(c) for c in points]
        left.plot(levels, [p["requests_per_s"] for p in points.values()], marker="o", color=color, label=name)
        middle.plot(levels, [p["p99_ms"] for p in points.values()], marker="o", color=color, label=f"{name} p99")
        middle.plot(levels, [p["p50_ms"] for p in points.values()], marker=".", linestyle="--", color=color, label=f"{name} p50")
    for axis in (left, middle):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent requests")
        axis.legend()
    left.set_ylabel("requests/s (one text each)")
    middle.set_ylabel("latency ms")
    names = list(client)
    right.bar(names, [client[n]["messages_per_s"] for n in names], color=["#3b7dd8", "#999999"])
    right.set_ylabel("messages/s (32 callers)")
    right.set_title("client: micro-batching vs one request per message", fontsize=9)
    fig.suptitle("centralita bench triton (intent model, CPU)")
    return save_figure(fig, "triton")
