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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional

import faust
import orjson
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

def derive_timer_keys(events) -> dict[int, list[tuple[bytes, bytes]]]:
    """The timer index keys of changelog records being recovered: every entry names its own (`"timer"` in its JSON),
    so the index is kept locally and never sent to the changelog."""
    derived: dict[int, list[tuple[bytes, bytes]]] = {}
    for event in events:
        value = event.message.value
        if not value or value[:1] != b"{":
            continue
        try:
            timer = orjson.loads(value).get("timer")
        except orjson.JSONDecodeError:
            continue
        if timer:
            derived.setdefault(event.message.partition, []).append((timer.encode(), b""))
    return derived


class MemoryStore(memory_store.Store):
    """Faust's in-memory store, written per partition (for unit tests and throw-away workers)."""

    def apply_changelog_batch(self, batch, to_key, to_value) -> None:
        batch = list(batch)
        super().apply_changelog_batch(batch, to_key, to_value)
        for partition, writes in derive_timer_keys(batch).items():
            self.apply(partition, writes)

    def apply(self, partition: int, writes: list[tuple[bytes, bytes | None]], offset: int | None = None) -> None:
        for key, value in writes:
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
    from rocksdict import WriteBatch

    class RocksStore(rocksdb_store.Store):
        """Faust's RocksDB store (rocksdict), written per partition instead of per current event."""

        def apply(self, partition: int, writes: list[tuple[bytes, bytes | None]], offset: int | None = None) -> None:
            """One atomic write batch: the values, and the changelog offset they reach (Faust's recovery marker), so
            the local store never holds a write its changelog does not, nor a marker ahead of its data."""
            batch = WriteBatch(raw_mode=True)
            for key, value in writes:
                if value is None:
                    batch.delete(key)
                    self._key_index.pop(key, None)
                else:
                    batch.put(key, value)
                    self._key_index[key] = partition
            if offset is not None:
                batch.put(self.offset_key, str(offset).encode())
            self._db_for_partition(partition).write(batch)

        def apply_changelog_batch(self, batch, to_key, to_value) -> None:
            batch = list(batch)
            super().apply_changelog_batch(batch, to_key, to_value)
            for partition, writes in derive_timer_keys(batch).items():
                self.apply(partition, writes)

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


@dataclass(frozen=True)
class LocalWrite:
    """A staged write that stays local (not sent to the changelog)."""

    value: bytes | None


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
        self._staged: dict[tuple[int, bytes], bytes | None] = {}  # not yet sent to the changelog
        self._overlay: dict[bytes, bytes | None] = {}  # staged or in flight: what reads see before the store
        self.producer: Any = None  # an infra.async_producer.AsyncProducer, given by the app before the first persist

    def read(self, key: bytes, partition: int) -> bytes | None:
        """The current value (staged writes included) of `key` in `partition`."""
        overlay = self._overlay
        if key in overlay:
            return overlay[key]
        return self.data.read(partition, key)

    def stage(self, key: bytes, value: bytes | None, partition: int) -> None:
        """Write (None: delete) now for every later read; the changelog record goes out with the next `persist()`, and
        the local store takes the write once the changelog has it."""
        self._overlay[key] = value
        self._staged[(partition, key)] = value

    def stage_local(self, key: bytes, value: bytes | None, partition: int) -> None:
        """A write derived from others (a timer index key): it goes to the local store with the next persisted
        batch but not to the changelog; recovery derives it again from the entries (`derive_timer_keys`)."""
        self._overlay[key] = value
        self._staged[(partition, key)] = LocalWrite(value)

    def scan(self, partition: int, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The durable keys in [start, stop) of a partition, oldest first (writes still in flight are left out, and
        keys deleted by one are skipped)."""
        overlay = self._overlay
        for key, value in self.data.scan(partition, start, stop):
            if key in overlay and overlay[key] is None:
                continue
            yield key, value

    @property
    def staged(self) -> int:
        return len(self._staged)

    async def persist(self) -> None:
        """Make every staged write durable (see `persist_all`, which does several tables in one round trip)."""
        await persist_all(self)

    def _send_staged(self) -> tuple[dict, dict] | None:
        """Hand the staged writes to the producer: (writes by partition, future of each partition's last record).

        Only the last record of each partition is awaited: the producer is idempotent, so the broker takes a
        partition's records in order, without gaps, and any failure stops the worker (`on_failure`)."""
        if not self._staged:
            return None
        if self.producer is None:
            self.producer = self._producer_factory()
        staged, self._staged = self._staged, {}
        topic = self.changelog_topic.get_topic_name()
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        logged: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for (partition, key), value in staged.items():
            if isinstance(value, LocalWrite):
                by_partition.setdefault(partition, []).append((key, value.value))
            else:
                by_partition.setdefault(partition, []).append((key, value))
                logged.setdefault(partition, []).append((key, value))
        pending = {}
        for partition, writes in logged.items():
            for key, value in writes[:-1]:
                self.producer.send(topic, value, key, None, partition)
            key, value = writes[-1]
            pending[partition] = self.producer.send_tracked(topic, value, key, None, partition)
        return by_partition, pending

    def _apply_acknowledged(self, by_partition: dict, offsets: dict[int, int]) -> None:
        """The acknowledged writes go to the local store (with the changelog offset they reach) and leave the overlay."""
        overlay = self._overlay
        for partition, writes in by_partition.items():
            self.data.apply(partition, writes, offsets.get(partition))
            for key, value in writes:
                if key in overlay and overlay[key] is value and (partition, key) not in self._staged:
                    del overlay[key]  # the store has it now (unless a newer write is staged)


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


_last_persist: asyncio.Future | None = None  # completion of the latest persist_all: each waits for the one before


async def persist_all(*tables: DurableTableMixin) -> None:
    """Make every staged write of these tables durable: all sent at once, then awaited; then written to the local
    stores. StateNotDurable when a write failed: nothing that depends on it may leave (the pipeline stops the worker).

    Persists overlap (the producer batches them together) but complete in the order they were called: a caller
    returns only once its own writes and every earlier caller's are acknowledged, so whatever its decisions read
    (staged by anyone before) is durable when it returns."""
    global _last_persist
    sent = [(table, table._send_staged()) for table in tables]
    sent = [(table, batch) for table, batch in sent if batch is not None]
    previous, done = _last_persist, asyncio.get_running_loop().create_future()
    _last_persist = done
    try:
        try:
            results = await asyncio.gather(*(future for _, (_, pending) in sent for future in pending.values()))
        except Exception as exc:  # noqa: BLE001 - any delivery failure means "not durable"
            raise StateNotDurable(f"changelog writes not acknowledged ({type(exc).__name__})") from exc
        if previous is not None:
            await asyncio.shield(previous)
        position = 0
        for table, (by_partition, pending) in sent:
            acknowledged = results[position:position + len(pending)]
            position += len(pending)
            table._apply_acknowledged(by_partition, dict(acknowledged))
        done.set_result(None)
    except BaseException as exc:
        done.set_exception(exc if isinstance(exc, StateNotDurable) else StateNotDurable(type(exc).__name__))
        done.exception()  # retrieved: the next persist re-raises it
        raise
    finally:
        if _last_persist is done and done.done():
            _last_persist = None


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

    def __init__(self, app: faust.App, tables: tuple[DurableTableMixin, ...], depth: int = 8) -> None:
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
            self.table.stage_local(old_timer, None, partition)
        if new_timer and new_timer != old_timer:
            self.table.stage_local(new_timer, b"", partition)
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
