"""Fault injection on the real stack: a messaging integration publishes raw WhatsApp, Twilio and Messenger bodies
(no headers; keyed by the customer's address or not at all; some redelivered byte for byte) while three workers
of one group are SIGKILLed at random moments (one of them while the group rebalances) and the broker is stopped
and started. Afterwards the effects audit must find nothing wrong: every message decided once, one reply each
while the bot owns the conversation and none while a person does, one disclosure per conversation, every replayed
record byte-identical to its first copy, and each session's turn count equal to its messages.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from pathlib import Path

import pytest

from streams.audit import audit
from tests.integration.streams.chaos import RawIntegration, WorkerPool, converse, customers, start_own_broker, worker_env

WORKERS = 3


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory):
    """A broker of this test's own: it is stopped and started in the middle of the traffic."""
    broker, settings = start_own_broker(Path(tmp_path_factory.mktemp("chaos-kafka")))
    try:
        yield broker, settings
    finally:
        broker.stop()


def wait_until_processed(settings, conversations: set[str], expected: set[str], pool: WorkerPool, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    report = None
    while time.monotonic() < deadline:
        pool.assert_alive()
        report = audit(settings, conversations)
        pending = [v for v in report.violations if "not processed" in v]
        if report.inbound_messages >= len(expected) and not pending:
            return report
        time.sleep(3)
    raise AssertionError(f"not processed within {timeout_s}s: {report.violations[:5] if report else '-'}")


def chaos(pool: WorkerPool, broker, rng: random.Random, stop: threading.Event, log: list[str]) -> None:
    """Five SIGKILLs at random moments (the second while the group rebalances after the first worker came back)
    and one broker stop/start; every killed worker is started again on its own state."""
    def pause(low: float, high: float) -> None:
        stop.wait(rng.uniform(low, high))

    def kill_and_restart(slot: int, why: str) -> None:
        pool.kill(slot, why)
        log.append(f"SIGKILL slot {slot} ({why})")
        pool.start(slot)

    pause(3, 6)
    first = rng.randrange(WORKERS)
    kill_and_restart(first, "mid-stream")
    pool.wait_ready(first)  # it rejoins: the group is rebalancing now
    second = rng.choice([s for s in range(WORKERS) if s != first])
    time.sleep(rng.uniform(0.0, 1.0))
    kill_and_restart(second, "during the rebalance its comeback started")
    pause(4, 8)
    broker.stop()
    log.append("broker stopped")
    time.sleep(rng.uniform(2, 5))
    broker.start()
    log.append("broker started")
    for n in range(3):
        pause(4, 8)
        kill_and_restart(rng.randrange(WORKERS), f"mid-stream #{n + 3}")


def test_sigkills_rebalances_and_a_broker_restart_leave_no_violation(own_broker, triton, tmp_path: Path) -> None:
    broker, settings = own_broker
    seed = int(time.time())
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    app_id = f"chaos-{tag}"
    audit_settings = settings.model_copy(update={"app_id": app_id})
    pool = WorkerPool(worker_env(settings, app_id, triton.settings_env()), tmp_path / "workers")
    people = customers(tag, per_source=12, rng=rng)
    integration = RawIntegration(settings, tag, rng)
    stop = threading.Event()
    events: list[str] = []
    traffic = threading.Thread(target=converse, args=(integration, people, 7.0, 0.15, stop), daemon=True)
    faults = threading.Thread(target=chaos, args=(pool, broker, rng, stop, events), daemon=True)
    try:
        for slot in range(WORKERS):
            pool.start(slot)
        for slot in range(WORKERS):
            pool.wait_ready(slot)
        traffic.start()
        faults.start()
        faults.join(240)
        traffic.join(240)
        assert not faults.is_alive() and not traffic.is_alive()
        expected = set(integration.published)
        for slot in range(WORKERS):
            pool.wait_ready(slot)
        conversations = None  # every conversation on this broker is this test's
        report = wait_until_processed(audit_settings, conversations, expected, pool, 240)
    finally:
        stop.set()
        pool.stop_all()
    summary = {"seed": seed, "events": events, "kills": len(pool.kills), "published": len(expected),
               "redeliveries": integration.redeliveries, **report.as_dict()}
    print("fault-injection audit:", json.dumps(summary, indent=2))
    assert len(pool.kills) >= 5 and "broker started" in events
    assert report.message_ids == expected  # each provider message exactly once, redeliveries dropped
    assert report.sessions_checked == len(people)
    assert report.ok, report.violations[:20]
