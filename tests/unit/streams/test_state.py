"""Durable tables' building blocks: per-partition stores with range scans, and the timer index kept in them."""

from __future__ import annotations

import faust
import pytest

from streams.state import MemoryStore, TimerIndex, is_timer_key


class StagingTable:
    """What TimerIndex needs of a durable table (stage, scan), over the real in-memory store."""

    def __init__(self) -> None:
        app = faust.App("unit-state", store="memory://")
        self.data = MemoryStore("memory://", app, table=None, table_name="unit")
        self.staged: list[tuple[bytes, bytes | None, int]] = []

    def stage(self, key: bytes, value: bytes | None, partition: int) -> None:
        self.data.write(partition, key, value)
        self.staged.append((key, value, partition))

    def scan(self, partition: int, start: bytes, stop: bytes):
        return self.data.scan(partition, start, stop)


def test_the_store_keeps_partitions_apart_and_scans_in_key_order() -> None:
    table = StagingTable()
    for partition, key in [(1, b"b"), (0, b"0"), (1, b"a"), (1, b"c")]:  # a key lives in one partition
        table.stage(key, key.upper(), partition)
    assert list(table.scan(1, b"a", b"c")) == [(b"a", b"A"), (b"b", b"B")]
    assert list(table.scan(0, b"", b"\xff")) == [(b"0", b"0")]
    table.stage(b"b", None, 1)
    assert table.data.read(1, b"b") is None and list(table.scan(1, b"", b"\xff")) == [(b"a", b"A"), (b"c", b"C")]


def test_a_deadline_moves_between_buckets_and_falls_due_in_order() -> None:
    table = StagingTable()
    timers = TimerIndex(table, bucket_s=10)
    first = timers.move(b"conv-1", 3, None, due=105.0)
    assert first == b"~t000000000010:conv-1" and is_timer_key(first)
    assert timers.move(b"conv-1", 3, first, due=108.0) == first  # same bucket: nothing written
    assert len(table.staged) == 1
    moved = timers.move(b"conv-1", 3, first, due=250.0)  # a newer message: the old key is tombstoned
    assert table.staged[-2:] == [(first, None, 3), (moved, b"", 3)]
    timers.move(b"conv-2", 3, None, due=99.0)
    timers.move(b"conv-3", 4, None, due=99.0)  # another partition: not this sweep's
    assert [k for _, k in timers.due(3, now=120.0)] == [b"conv-2"]
    assert [k for _, k in timers.due(3, now=259.0)] == [b"conv-2", b"conv-1"]
    after = next(iter(timers.due(3, now=259.0)))[0]
    assert [k for _, k in timers.due(3, now=259.0, after=after)] == [b"conv-1"]
    assert len(list(timers.due(3, now=259.0, limit=1))) == 1
    assert timers.move(b"conv-1", 3, moved, due=None) is None and table.staged[-1] == (moved, None, 3)


@pytest.mark.parametrize("bucket", [0.5, 30, 3600])
def test_timer_keys_sort_like_their_deadlines(bucket: float) -> None:
    timers = TimerIndex(StagingTable(), bucket_s=bucket)
    dues = [0, 1, 59, 61, 3599, 3601, 86_400 * 400, 1.8e9]
    keys = [timers.key(d, b"x") for d in dues]
    assert keys == sorted(keys)


def test_the_rocksdb_store_writes_reads_and_scans_per_partition(tmp_path) -> None:
    from streams.state import OFFSET_KEY, _rocks_store_class

    app = faust.App("unit-rocks", store="rocksdb://", datadir=str(tmp_path))
    store = _rocks_store_class()("rocksdb://", app, table=None, table_name="unit", key_type=bytes, value_type=bytes,
                                 key_serializer="raw", value_serializer="raw")
    store.write(2, b"conv-a", b"1")
    store.write(2, b"~t000000000001:conv-a", b"")
    store.write(5, b"conv-b", b"2")
    store._db_for_partition(2).put(OFFSET_KEY, b"7")  # Faust's own bookkeeping key is never scanned
    assert store.read(2, b"conv-a") == b"1" and store.read(5, b"conv-a") is None
    assert list(store.scan(2, b"", b"\xff")) == [(b"conv-a", b"1"), (b"~t000000000001:conv-a", b"")]
    assert list(store.scan(2, b"~t", b"~u")) == [(b"~t000000000001:conv-a", b"")]
    store.write(2, b"conv-a", None)
    assert store.read(2, b"conv-a") is None
    assert list(store.scan(9, b"", b"\xff")) == []  # a partition this worker never opened
