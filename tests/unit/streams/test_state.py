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

    def stage_local(self, key: bytes, value: bytes | None, partition: int) -> None:
        self.data.apply(partition, [(key, value)])
        self.staged.append((key, value, partition))

    def scan(self, partition: int, start: bytes, stop: bytes):
        return self.data.scan(partition, start, stop)


def test_the_store_keeps_partitions_apart_and_scans_in_key_order() -> None:
    table = StagingTable()
    for partition, key in [(1, b"b"), (0, b"0"), (1, b"a"), (1, b"c")]:  # a key lives in one partition
        table.stage_local(key, key.upper(), partition)
    assert list(table.scan(1, b"a", b"c")) == [(b"a", b"A"), (b"b", b"B")]
    assert list(table.scan(0, b"", b"\xff")) == [(b"0", b"0")]
    table.stage_local(b"b", None, 1)
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
    from streams.state import _rocks_store_class

    app = faust.App("unit-rocks", store="rocksdb://", datadir=str(tmp_path))
    store = _rocks_store_class()("rocksdb://", app, table=None, table_name="unit", key_type=bytes, value_type=bytes,
                                 key_serializer="raw", value_serializer="raw")
    store.apply(2, [(b"conv-a", b"1"), (b"~t000000000001:conv-a", b"")], offset=7)
    store.apply(5, [(b"conv-b", b"2")])
    assert store.persisted_offset(faust.types.TP("x", 2)) == 7  # Faust's recovery marker, written with the data
    assert store.read(2, b"conv-a") == b"1" and store.read(5, b"conv-a") is None
    assert list(store.scan(2, b"", b"\xff")) == [(b"conv-a", b"1"), (b"~t000000000001:conv-a", b"")]  # not the marker
    assert list(store.scan(2, b"~t", b"~u")) == [(b"~t000000000001:conv-a", b"")]
    store.apply(2, [(b"conv-a", None)])
    assert store.read(2, b"conv-a") is None
    assert list(store.scan(9, b"", b"\xff")) == []  # a partition this worker never opened


class RecordingProducer:
    """Stands in for the AsyncProducer: records what goes to the changelog, acknowledges tracked records."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int, bool]] = []
        self.fail = fail

    def send(self, topic, value, key=None, headers=None, partition=None) -> None:
        self.sent.append((topic, key, value, partition, False))

    def send_tracked(self, topic, value, key=None, headers=None, partition=None):
        import asyncio

        self.sent.append((topic, key, value, partition, True))
        done = asyncio.get_running_loop().create_future()
        if self.fail:
            done.set_exception(RuntimeError("broker said no"))
        else:
            done.set_result((partition, 100 + len(self.sent)))
        return done


def test_staged_writes_are_read_at_once_reach_the_store_only_once_acknowledged() -> None:
    import asyncio

    from streams.state import StateNotDurable, durable_table

    app = faust.App("unit-durable", store="memory://")
    producer = RecordingProducer()
    table = durable_table(app, "sessions", 6, lambda: producer)
    table.stage(b"conv-1", b"v1", 2)
    table.stage(b"conv-1", b"v2", 2)  # the same key twice in a batch: one changelog record, the last value
    table.stage(b"conv-2", b"w", 2)
    table.stage(b"conv-3", b"x", 4)
    table.stage_local(b"~t000000000001:conv-3", b"", 4)  # a timer key: local only
    assert table.read(b"conv-1", 2) == b"v2" and table.data.read(2, b"conv-1") is None  # staged, not in the store
    asyncio.run(table.persist())
    assert [(k, v, p, tracked) for _, k, v, p, tracked in producer.sent] == [
        (b"conv-1", b"v2", 2, False), (b"conv-2", b"w", 2, True), (b"conv-3", b"x", 4, True)]  # last per partition awaited
    assert {t for t, *_ in producer.sent} == {"unit-durable-sessions-changelog"}
    assert table.data.read(2, b"conv-1") == b"v2" and table._overlay == {}
    assert table.data.read(4, b"~t000000000001:conv-3") == b""  # in the local store, never on the changelog

    failing = durable_table(faust.App("unit-durable-2", store="memory://"), "sessions", 6, lambda: RecordingProducer(fail=True))
    failing.stage(b"conv-9", b"v", 1)
    with pytest.raises(StateNotDurable, match="not acknowledged"):
        asyncio.run(failing.persist())
    assert failing.data.read(1, b"conv-9") is None  # never durable: never in the store


def test_recovery_derives_the_timer_index_from_the_entries() -> None:
    from types import SimpleNamespace

    from streams.state import derive_timer_keys

    def event(partition, key, value):
        return SimpleNamespace(message=SimpleNamespace(partition=partition, key=key, value=value))

    batch = [event(1, b"conv-1", b'{"turns": 3, "timer": "~t000000000042:conv-1"}'), event(1, b"conv-2", None),
             event(2, b"msg-9", b'{"src": "2/7", "timer": "~t000000000009:msg-9"}'), event(2, b"x", b"not json"),
             event(3, b"conv-3", b'{"timer": null}')]
    assert derive_timer_keys(batch) == {1: [(b"~t000000000042:conv-1", b"")], 2: [(b"~t000000000009:msg-9", b"")]}
