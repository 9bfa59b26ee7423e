"""Several workers in one group on the real broker: they share the traffic, and when one is SIGKILLed and another
started in the middle of it, every partition answers again (the time it takes is printed; `bench recovery`
measures it against the 15 s target)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.integration.streams.chaos import Probes, WorkerPool, worker_env, worker_messages


def test_three_workers_share_the_traffic_and_a_killed_ones_partitions_answer_again(kafka, triton, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = kafka.settings
    pool = WorkerPool(worker_env(settings, f"it-workers-{tag}", triton.settings_env()), tmp_path / "workers")
    probes = None
    try:
        for slot in range(3):
            pool.start(slot)
        for slot in range(3):
            pool.wait_ready(slot)
        probes = Probes(settings, tag).start()
        settled = probes.wait_all_answer(time.time(), 60)
        assert settled is not None, "not every partition answered with three workers"
        time.sleep(3)
        shares = {slot: worker_messages(pool.processes[slot].web_port) for slot in range(3)}
        assert all(count > 0 for count in shares.values()), shares  # each of the three decides some conversations

        killed = time.time()
        pool.kill(1, "mid-traffic")
        pool.start(3)  # a new worker joins while the killed one's partitions are orphaned
        recovery = probes.wait_all_answer(killed, 90)
        pool.assert_alive()
        assert recovery is not None, "a partition of the killed worker never answered again"
        print(f"after SIGKILL of one of three workers, every partition answered again within {recovery:.1f} s")
        unanswered = [mid for mid, (_, at) in probes.sent.items() if at < time.time() - 20 and mid not in probes.replied]
        assert unanswered == []  # nothing sent before, during or after the failover went unanswered
    finally:
        if probes is not None:
            probes.close()
        pool.stop_all()
