"""Recovery benchmark: three workers in one group answer customers on every partition; one is SIGKILLed and another
started at once (a crashed pod and its replacement). Measured from the outside: seconds from the kill until every
partition has answered a message sent after it (probes on every partition, every 0.5 s). Target: 15 s.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

from infra.kafka_clients import make_admin
from infra.settings import get_settings
from infra.stack import Stack
from infra.topic_admin import catalog_for, create_topics
from tests.integration.streams.chaos import Probes, WorkerPool, worker_env

DESCRIPTION = "seconds from SIGKILL of one of three workers until every partition answers again"
TARGET_S = 15.0


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    tag = uuid.uuid4().hex[:8]
    trials = 2 if quick else 5
    root = Path(settings.state_dir) / "bench-recovery" / tag
    extra = {"CENTRALITA_AUTO_OFFSET_RESET": "latest"}
    pool = WorkerPool(worker_env(settings, f"bench-recovery-{tag}", extra), root)  # info: wait_ready reads its marker
    for slot in range(3):
        pool.start(slot)
    for slot in range(3):
        pool.wait_ready(slot, 180)
    probes = Probes(settings, tag).start()
    results = []
    rng = random.Random(tag)
    next_slot = 3
    try:
        if probes.wait_all_answer(time.time(), 120) is None:
            raise RuntimeError("the three workers never answered on every partition")
        for _ in range(trials):
            time.sleep(5)
            victim = rng.choice(pool.alive())
            killed = time.time()
            pool.kill(victim, "bench")
            pool.start(next_slot)
            next_slot += 1
            seconds = probes.wait_all_answer(killed, 120)
            results.append(round(seconds, 2) if seconds is not None else None)
            pool.wait_ready(next_slot - 1, 180)
            probes.wait_all_answer(time.time(), 120)
    finally:
        probes.close()
        pool.stop_all()
    measured = [r for r in results if r is not None]
    return {"bench": "recovery", "unit": "seconds from SIGKILL until every partition answers again",
            "results": {"max_s": max(measured) if measured else None,
                        "median_s": sorted(measured)[len(measured) // 2] if measured else None},
            "trials": results, "session_timeout_s": settings.broker_session_timeout_s,
            "targets": {f"recovery_s<={TARGET_S:g}": bool(measured) and len(measured) == len(results) and max(measured) <= TARGET_S},
            "quick": quick, "plot": plot(results)}


def plot(results: list) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.bench.plots import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(range(1, len(results) + 1), [r or 0 for r in results])
    ax.axhline(TARGET_S, color="red", linestyle=":", label=f"target {TARGET_S:g} s")
    ax.set_xlabel("trial (SIGKILL of one of three workers, a replacement started)")
    ax.set_ylabel("seconds until every partition answers")
    ax.legend()
    return save_figure(fig, "recovery")
