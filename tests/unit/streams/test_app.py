"""The worker's Kafka plumbing: the partitioner matches the Java client's (and librdkafka's murmur2_random)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from streams import app as worker_app


def test_partitioner_is_the_java_clients_murmur2() -> None:
    rng = random.Random(3)
    for _ in range(500):
        key = f"conv-{rng.getrandbits(64):x}".encode()
        partitions = list(range(rng.choice([3, 6, 12])))
        assert worker_app.partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)
        assert worker_app.partition_for(key, len(partitions)) == worker_app.partitioner(key, partitions, partitions)
    assert worker_app.partitioner(None, [0, 1, 2], [1]) == 1


def test_a_commit_never_skips_an_offset_it_has_not_seen_acknowledged() -> None:
    from intervaltree import IntervalTree

    from streams.app import committable_end

    def run(committed, acked, gaps=()):
        acked, index, tree = list(acked), set(acked), IntervalTree.from_tuples(gaps)
        return committable_end(committed, acked, index, tree), acked

    assert run(5, [5, 6, 7]) == (8, [])
    assert run(5, [6, 7]) == (None, [6, 7])  # offset 5 (skipped in a rebalance) is not acknowledged: wait for it
    assert run(0, [1, 2]) == (None, [1, 2])  # a committed 0 is an offset like any other
    assert run(None, [0, 1]) == (None, [0, 1])  # no known start: no commit (the worker commits one before it starts)
    assert run(5, [3, 4, 5, 6, 9]) == (7, [9])  # read again after a seek; 7 and 8 not yet
    assert run(5, [5, 9], gaps=[(6, 9)]) == (10, [])  # 6-8 are not in the log
    assert run(5, [5, 5, 6]) == (7, [])


def test_offsets_are_handled_in_order_and_a_skipped_one_is_read_again() -> None:
    from faust.types import TP

    from streams.app import PartitionOrder

    tp, order = TP("channel.whatsapp.inbound.raw", 3), PartitionOrder()
    assert order.admit(tp, 10, committed=10, now=0) == ("next", None)
    assert order.admit(tp, 11, committed=10, now=0) == ("next", None)
    assert order.admit(tp, 14, committed=10, now=0) == ("seek", 12)  # 12 and 13 were skipped: read them again
    assert order.admit(tp, 15, committed=10, now=0.5) == ("wait", None)  # the seek is on its way: hold the rest back
    assert order.admit(tp, 11, committed=10, now=0.6) == ("again", None)  # handled already: replayed, harmless
    assert order.admit(tp, 12, committed=10, now=0.7) == ("next", None)
    assert order.admit(tp, 13, committed=10, now=0.8) == ("next", None)
    assert order.admit(tp, 14, committed=10, now=0.9) == ("next", None)


def test_a_gap_that_stays_after_several_seeks_is_taken_as_absent_from_the_log() -> None:
    from faust.types import TP

    from streams.app import PartitionOrder

    tp, order = TP("conversation.handoff", 0), PartitionOrder()
    order.restart({tp: 5})
    verdicts = [order.admit(tp, 8, committed=5, now=t)[0] for t in (0, 1, 2, 3, 10)]
    assert verdicts == ["seek"] * 5  # once a second at most, and not given up on before GIVE_UP_S
    assert order.admit(tp, 8, committed=5, now=PartitionOrder.GIVE_UP_S + 1) == ("absent", 5)
    assert order.admit(tp, 9, committed=5, now=40) == ("next", None)
    order.forget([tp])
    assert order.admit(tp, 20, committed=20, now=50) == ("next", None)  # after a rebalance: from the committed offset


def test_a_partition_whose_next_record_never_comes_is_read_again() -> None:
    from faust.types import TP

    from streams.app import PartitionOrder

    tp, quiet, order = TP("channel.twilio.inbound.raw", 1), TP("conversation.agent", 1), PartitionOrder()
    order.restart({tp: 7, quiet: 3})
    ends = {tp: 12, quiet: 3}  # tp has records 7-11 on the broker; quiet has none to read
    assert order.stalled(ends.get, now=order.progress[tp] + 1) == []  # not yet
    assert order.stalled(ends.get, now=order.progress[tp] + PartitionOrder.STALL_S) == [(tp, 7)]
    order.admit(tp, 7, committed=7, now=order.progress[tp] + 0.1)
    assert order.stalled(ends.get, now=order.progress[tp] + 1) == []  # it moves again
