"""Durable state of the stream agents: Faust tables whose writes become durable on purpose, before the effects
they record leave the worker.

A plain Faust table sends its changelog record "soon" (a background buffer whose flush may return early) and
writes RocksDB under the partition of whatever event is current, so nothing ties the moment a change is durable
to the moment its effects are published. Here an agent *stages* writes (the local store sees them at once, the
changelog record waits), then `await persist()` sends every staged record and returns when the broker has
acknowledged all of them; only then does the agent publish the effects. A crash before that point leaves no
effect outside; a crash after it leaves the changelog holding everything the effects depend on.

Faust still does what it is good at: the changelog topics, assigning their partitions with the source topics',
recovery and standby replicas. Each write names its partition explicitly (the conversation's partition), so the
store, the changelog and the assignment always agree.

Timers live in the same tables: `TimerIndex` keeps one sorted key per pending deadline (`~t<bucket>:<key>`), so a
sweep reads only what fell due (a RocksDB range scan), and deleting an expired entry writes a tombstone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional

import faust
from faust.stores import memory as memory_store
from faust.types import TP
from yarl import URL

log = logging.getLogger("centralita.state")

TIMER_PREFIX = b"~t"  # sorts after every id Centralita writes (conv-, msg-, phone:, email:)
OFFSET_KEY = b"__faust\0offset__"


class StateNotDurable(RuntimeError):
    """The broker did not acknowledge a changelog write: the effects that depend on it must not leave."""


def crash(reason: str) -> None:
    """Stop the process at once, like SIGKILL: no commit, no flush, no generator clean-up that would acknowledge the
    events of the batch in hand. The partitions' uncommitted inputs are replayed by whoever takes them next."""
    log.critical("stopping the worker: %s", reason)
    logging.shutdown()
    os._exit(70)


# -- stores: explicit partitions, range scans -----------------------------------------------------------------

class MemoryStore(memory_store.Store):
    """Faust's in-memory store, written per partition (for unit tests and throw-away workers)."""

    def write(self, partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        else:
            self.data[key] = value
            self._key_partition[key] = partition

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, partition: int, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k, p in self._key_partition.items() if p == partition and start <= k < stop)
        for key in keys:
            value = self.data.get(key)
            if value is not None:
                yield key, value

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Nothing to remember: an in-memory store reads its whole changelog on every start."""


def _rocks_store_class() -> type:
    from faust.stores import rocksdb as rocksdb_store

    class RocksStore(rocksdb_store.Store):
        """Faust's RocksDB store (rocksdict), written per partition instead of per current event."""

        def write(self, partition: int, key: bytes, value: bytes | None) -> None:
            db = self._db_for_partition(partition)
            if value is None:
                db.delete(key)
                self._key_index.pop(key, None)
            else:
                db.put(key, value)
                self._key_index[key] = partition

        def read(self, partition: int, key: bytes) -> bytes | None:
            return self._db_for_partition(partition).get(key)

        def scan(self, partition: int, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
            db = self._dbs.get(partition)
            if db is None:
                return
            for key, value in db.items(from_key=start):
                if key >= stop:
                    return
                if key != OFFSET_KEY:
                    yield key, value

    return RocksStore


# -- tables ---------------------------------------------------------------------------------------------------

class DurableTableMixin:
    """Staged writes with an explicit partition, made durable by `persist()`; bytes keys and values."""

    app: faust.App
    changelog_topic: Any
    data: Any

    def _new_store_by_url(self, url: str | URL) -> Any:
        scheme = URL(str(url)).scheme
        if scheme == "memory":
            cls: type = MemoryStore
        elif scheme == "rocksdb":
            cls = _rocks_store_class()
        else:
            raise ValueError(f"unsupported table store {url!s}: use memory:// or rocksdb://")
        return cls(url, self.app, self, table_name=self.name, key_type=bytes, value_type=bytes,  # type: ignore[attr-defined]
                   key_serializer="raw", value_serializer="raw", loop=self.loop, options=self.options)  # type: ignore[attr-defined]

    def _init_durable(self) -> None:
        self._staged: dict[tuple[int, bytes], bytes | None] = {}
        self._persist_lock = asyncio.Lock()
        self.producer: Any = None  # an infra.async_producer.AsyncProducer, given by the app before the first persist

    def read(self, key: bytes, partition: int) -> bytes | None:
        """The current value (staged writes included) of `key` in `partition`."""
        return self.data.read(partition, key)

    def stage(self, key: bytes, value: bytes | None, partition: int) -> None:
        """Write (None: delete) now in the local store; the changelog record goes out with the next `persist()`."""
        self.data.write(partition, key, value)
        self._staged[(partition, key)] = value

    def scan(self, partition: int, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.data.scan(partition, start, stop)

    @property
    def staged(self) -> int:
        return len(self._staged)

    async def persist(self) -> None:
        """Send every staged write to the changelog and wait until the broker acknowledged all of them.

        Holds a lock, so a caller returns only once its writes (possibly sent by another caller) are acknowledged.
        StateNotDurable when any of them failed: the caller must not publish what depends on them.
        """
        async with self._persist_lock:
            if not self._staged:
                return
            if self.producer is None:
                self.producer = self._producer_factory()
            staged, self._staged = self._staged, {}
            topic = self.changelog_topic.get_topic_name()
            pending = [self.producer.send_tracked(topic, value, key, None, partition)
                       for (partition, key), value in staged.items()]
            try:
                results = await asyncio.gather(*pending)
            except Exception as exc:  # noqa: BLE001 - any delivery failure means "not durable"
                raise StateNotDurable(f"{len(staged)} changelog writes of {topic} not acknowledged "
                                      f"({type(exc).__name__})") from exc
            latest: dict[int, int] = {}
            for partition, offset in results:
                latest[partition] = max(latest.get(partition, -1), offset)
            for partition, offset in latest.items():
                self.data.set_persisted_offset(TP(topic, partition), offset)


class DurableTable(DurableTableMixin, faust.Table):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_durable()


class DurableGlobalTable(DurableTableMixin, faust.GlobalTable):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_durable()


def durable_table(app: faust.App, name: str, partitions: int, producer: Callable[[], Any], *, is_global: bool = False,
                  help: str = "", options: dict | None = None) -> DurableTableMixin:
    """Declare a durable table on `app` (bytes keys and values; the caller encodes). `producer()` gives the
    AsyncProducer its changelog records go through (the one the agents' effects use)."""
    cls = DurableGlobalTable if is_global else DurableTable
    table = cls(app=app, name=name, key_type=bytes, value_type=bytes, partitions=partitions, use_partitioner=True,
                help=help, options=options)
    table._producer_factory = producer
    return app.tables.add(table)


async def persist_all(*tables: DurableTableMixin) -> None:
    """Make every staged write of these tables durable, or stop the worker (nothing that depends on them may leave)."""
    try:
        for table in tables:
            await table.persist()
    except StateNotDurable as exc:
        crash(str(exc))


class Pipeline:
    """Where an agent's batches go once decided: their state is persisted, then their records are published, then
    their input events are acknowledged, in order, in the background while the agent decides the next batch.

    Faust acknowledges a batch's events as soon as the agent asks for the next one (and when the agent's generator is
    closed, after an error or a stop); acknowledged events are committed. So each event is held (one more reference)
    until its batch's records are out: a crash or a stop before that leaves it uncommitted, to be replayed. Each
    partition's events are handled in offset order with none skipped (`admit`). Deciding
    batch k+1 while batch k's state is on its way is safe: k+1's records wait for k+1's state, which is persisted
    after (or with) k's, and decisions read the local store, which has every staged write.
    """

    def __init__(self, app: faust.App, tables: tuple[DurableTableMixin, ...], depth: int = 2) -> None:
        self.app, self.tables, self.depth = app, tables, depth
        self._inflight: list[asyncio.Future] = []

    async def admit(self, events) -> list:
        """The events to handle, in their partitions' order, each held (not acknowledged) until its batch is out.
        Call first thing in the agent. An event that arrived out of order is left out: it comes again."""
        consumer = self.app.consumer
        admitted = []
        for event in events:
            if await consumer.admit(event.message):
                event.message.incref()
                admitted.append(event)
        return admitted

    async def submit(self, events, publish: Callable[[], None]) -> None:
        """Persist what is staged, then `publish()` (synchronous: hand the records over), then acknowledge `events`.
        Waits only when more than `depth` batches are on their way (backpressure)."""
        self._inflight = [task for task in self._inflight if not task.done()]
        self._inflight.append(asyncio.ensure_future(self._finish(list(events), publish)))
        while len(self._inflight) > self.depth:
            await self._inflight.pop(0)

    async def drain(self) -> None:
        """Wait until every submitted batch is out."""
        while self._inflight:
            await self._inflight.pop(0)

    async def _finish(self, events, publish: Callable[[], None]) -> None:
        try:
            await persist_all(*self.tables)
            publish()
        except Exception as exc:  # noqa: BLE001 - a batch that cannot be published must not be acknowledged
            crash(f"a batch failed after its decision ({type(exc).__name__} at {code_location(exc)})")
        consumer = self.app.consumer
        for event in events:
            consumer.mark_decided(event.message)
            event.message.ack(consumer)


async def guarded(work: Awaitable[None]) -> None:
    """An agent's work on one batch: an error stops the worker at once (never an agent that goes on, or stops, with
    the batch's events acknowledged); a cancellation (a graceful stop) passes, the held events stay unacknowledged."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        crash(f"a batch failed ({type(exc).__name__} at {code_location(exc)})")


def code_location(exc: BaseException) -> str:
    """Where an exception was raised (file:line in function): what a log may say of it. Its message may quote a
    customer's words and is never logged."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"


# -- timers ---------------------------------------------------------------------------------------------------

class TimerIndex:
    """Deadlines of a durable table's entries, kept in the table itself as `~t<bucket>:<key>` keys.

    Buckets are `bucket_s` wide, so a deadline costs one small write when it moves to another bucket, and a sweep
    finds everything due with one range scan. The value of an index key is empty; the entry itself says whether the
    deadline still holds (a newer message moves it).
    """

    def __init__(self, table: DurableTableMixin, bucket_s: float) -> None:
        self.table = table
        self.bucket_s = max(0.001, bucket_s)

    def key(self, due: float, key: bytes) -> bytes:
        return TIMER_PREFIX + b"%012d:" % max(0, int(due // self.bucket_s)) + key

    def move(self, key: bytes, partition: int, old_timer: bytes | None, due: float | None) -> bytes | None:
        """Stage the entry's new deadline (None: no deadline); returns its index key to remember on the entry."""
        new_timer = self.key(due, key) if due is not None else None
        if old_timer and old_timer != new_timer:
            self.table.stage(old_timer, None, partition)
        if new_timer and new_timer != old_timer:
            self.table.stage(new_timer, b"", partition)
        return new_timer

    def due(self, partition: int, now: float, after: bytes | None = None,
            limit: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """(index key, entry key) of deadlines in buckets up to `now`'s, oldest first, after index key `after`.

        The current bucket is included, so an entry may not be quite due yet: the caller checks the entry itself."""
        stop = TIMER_PREFIX + b"%012d;" % int(now // self.bucket_s)  # ';' sorts right after ':'
        start = after + b"\x00" if after is not None else TIMER_PREFIX
        for n, (index_key, _) in enumerate(self.table.scan(partition, start, stop)):
            if limit is not None and n >= limit:
                return
            yield index_key, index_key.split(b":", 1)[1]


def is_timer_key(key: bytes) -> bool:
    return key.startswith(TIMER_PREFIX)


def active_partitions(app: faust.App, table: DurableTableMixin) -> set[int]:
    """Partitions of `table` this worker owns (not standbys)."""
    topic = table.changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def recovered(app: faust.App) -> bool:
    """True when no rebalance or table recovery is in progress (sweeps wait; agents are paused by Faust anyway)."""
    recovery = getattr(app.tables, "recovery", None)
    completed: Optional[Any] = getattr(recovery, "completed", None)
    return not app.rebalancing and (completed is None or completed.is_set())
