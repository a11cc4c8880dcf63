"""A Kafka streaming source for Spark written with the Python Data Source API (pyspark >= 4.2).

Use it where Spark's JVM Kafka connector (``spark-sql-kafka-0-10``) cannot be fetched. Output
schema and option names follow Spark's own Kafka source, so job code is the same for both::

    spark.dataSource.register(KafkaDataSource)
    (spark.readStream.format("ticklake-kafka")
        .option("kafka.bootstrap.servers", "127.0.0.1:9092")
        .option("subscribe", "market.ticks")
        .option("startingOffsets", "earliest")        # or "latest", or per-partition JSON
        .option("maxOffsetsPerTrigger", 10000)       # admission control (ReadMaxRows)
        .load())

Columns: ``key`` binary, ``value`` binary, ``topic`` string, ``partition`` int, ``offset`` long,
``timestamp`` timestamp (UTC), ``timestampType`` int (0 = CreateTime, 1 = LogAppendTime).

Offsets are Spark's Kafka JSON, ``{"topic": {"0": 42, "1": 17}}``: per partition, the next
offset to read. Each micro-batch has one input partition per Kafka partition with new data,
read on the executors with librdkafka (confluent-kafka). ``Trigger.AvailableNow`` is
supported. Other ``kafka.*`` options are passed to librdkafka without the prefix.

``failOnDataLoss`` (default ``true``), as in Spark's source: when offsets the query still needs
are gone (deleted by retention, or the topic was deleted and created again, so that its end
offsets fell below what was already read) the query fails with a clear error. With
``false`` it logs the loss and goes on: a partition whose end fell below the read position is
read again from its new log start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

from pipeline.connectors.kafka_offsets import (
    KafkaSourceError,
    OffsetProbe,
    Offsets,
    librdkafka_config,
    parse_starting_offsets,
    split_by_max_rows,
)

__all__ = ["KAFKA_SCHEMA_DDL", "KafkaDataSource", "KafkaSourceError", "KafkaStreamReader",
           "OffsetProbe", "Offsets", "librdkafka_config", "parse_starting_offsets",
           "read_partition", "split_by_max_rows"]

log = logging.getLogger(__name__)

KafkaRow = tuple[bytes | None, bytes | None, str | None, int | None, int, datetime | None, int]
"""One row of the source: key, value, topic, partition, offset, timestamp, timestampType."""
KAFKA_SCHEMA_DDL = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)
@dataclass(frozen=True)
class KafkaInputPartition(InputPartition):
    """One Spark task: messages ``[from_offset, until_offset)`` of one Kafka partition."""

    topic: str
    partition: int
    from_offset: int
    until_offset: int
    conf: tuple[tuple[str, Any], ...]
    poll_timeout_s: float
    fail_on_data_loss: bool = True


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Driver-side planner and executor-side reader of :class:`KafkaDataSource`."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self.conf = librdkafka_config(options)
        topics = options.get("subscribe", "")
        self.topics = [t.strip() for t in topics.split(",") if t.strip()]
        if not self.topics:
            raise KafkaSourceError("option 'subscribe' (comma-separated topics) is required")
        self.starting = parse_starting_offsets(options.get("startingOffsets", "latest"),
                                               self.topics)
        max_rows = options.get("maxOffsetsPerTrigger")
        self.max_rows = int(max_rows) if max_rows else None
        if self.max_rows is not None and self.max_rows < 1:
            raise KafkaSourceError(f"maxOffsetsPerTrigger={max_rows} must be >= 1")
        self.poll_timeout_s = float(options.get("pollTimeoutMs", "120000")) / 1000
        flag = options.get("failOnDataLoss", "true").strip().lower()
        if flag not in ("true", "false"):
            raise KafkaSourceError(f"failOnDataLoss={flag!r}: use 'true' or 'false'")
        self.fail_on_data_loss = flag == "true"
        self._probe: OffsetProbe | None = None
        self._target: Offsets | None = None
        self._latest: Offsets | None = None

    @property
    def probe(self) -> OffsetProbe:
        if self._probe is None:
            self._probe = OffsetProbe(self.conf)
        return self._probe

    def _current_end(self) -> Offsets:
        """Each partition's end offset (ListOffsets LATEST)."""
        tps = self.probe.partitions(self.topics)
        ends: Offsets = {}
        for (t, p), off in self.probe.latest(tps).items():
            ends.setdefault(t, {})[str(p)] = off
        self._latest = ends
        return ends

    def initialOffset(self) -> Offsets:
        tps = self.probe.partitions(self.topics)
        if self.starting == "latest":
            return self._current_end()
        earliest = self.probe.earliest(tps)
        offsets: Offsets = {t: {} for t in self.topics}
        for (t, p), low in earliest.items():
            offsets[t][str(p)] = low
        if isinstance(self.starting, dict):
            latest = self._current_end()
            for t, parts in self.starting.items():
                for part, off in parts.items():
                    offsets.setdefault(t, {})[part] = (
                        offsets[t].get(part, 0) if off == -2
                        else latest.get(t, {}).get(part, 0) if off == -1 else off
                    )
        return offsets

    def latestOffset(self, start: Offsets, limit: ReadLimit) -> Offsets:
        # A copy: Spark's dict is not ours to change. Spark may call this before
        # initialOffset() on a fresh query (docs/architecture.md), so start can be empty.
        start = {t: dict(parts) for t, parts in (start or {}).items()}
        end = self._current_end()
        # Partitions that appeared after start are read from their beginning (offset 0 is
        # right after creation; a smaller log-start is clamped when read).
        for t, parts in end.items():
            for p in parts:
                start.setdefault(t, {}).setdefault(p, 0)
        if self._target is not None:
            end = {
                t: {p: min(off, self._target.get(t, {}).get(p, start[t][p]))
                    for p, off in parts.items()}
                for t, parts in end.items()
            }
        for t, parts in end.items():
            for p, off in parts.items():
                if off < start[t][p]:
                    self._data_loss(
                        f"{t}[{p}]: the end offset {off} is below the next offset to read "
                        f"{start[t][p]}: the topic was deleted and recreated or truncated (an "
                        "in-memory broker restarted?), so records may be lost"
                    )
        if self.fail_on_data_loss:
            end = {t: {p: max(off, start[t][p]) for p, off in parts.items()}
                   for t, parts in end.items()}
        for t, parts in start.items():  # keep partitions the broker did not list this time
            for p, off in parts.items():
                end.setdefault(t, {}).setdefault(p, off)
        if isinstance(limit, ReadMaxRows):
            end = split_by_max_rows(start, end, limit.max_rows)
        return end

    def _data_loss(self, message: str) -> None:
        if self.fail_on_data_loss:
            raise KafkaSourceError(
                message + ". Set the option failOnDataLoss=false to log the loss and go on, or "
                "start the query with a new checkpoint."
            )
        log.warning("data loss (failOnDataLoss=false, going on): %s", message)

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def reportLatestOffset(self) -> Offsets | None:
        return self._latest

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._current_end()

    def partitions(self, start: Offsets, end: Offsets) -> list[KafkaInputPartition]:
        conf = tuple(sorted((k, v) for k, v in self.conf.items() if k != "logger"))
        splits = []
        for t, parts in end.items():
            for p, until in sorted(parts.items(), key=lambda kv: int(kv[0])):
                begin = start.get(t, {}).get(p, 0)
                if until < begin:  # offsets went back (failOnDataLoss=false): from the start
                    begin = 0
                if until > begin:
                    splits.append(
                        KafkaInputPartition(t, int(p), begin, until, conf, self.poll_timeout_s,
                                            self.fail_on_data_loss)
                    )
        return splits

    def read(self, partition: KafkaInputPartition) -> Iterator[KafkaRow]:  # type: ignore[override]
        return read_partition(partition)

    def commit(self, end: Offsets) -> None:
        """Nothing to do: offsets live in Spark's checkpoint, not in a consumer group."""

    def stop(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None


def read_partition(split: KafkaInputPartition) -> Iterator[KafkaRow]:
    """Yield the rows of ``split`` (runs on an executor).

    Raises:
        KafkaSourceError: messages stay missing for ``poll_timeout_s`` (offsets deleted or the
            broker lost data), so nothing is silently skipped.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({**dict(split.conf), "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(split.topic, split.partition, split.from_offset)])
        position = split.from_offset
        last_progress = time.monotonic()
        while position < split.until_offset:
            # ask for what is left: consume() returns once it has that many, instead of
            # waiting out its timeout for a batch the split does not need
            batch = consumer.consume(min(10_000, split.until_offset - position), timeout=0.5)
            if not batch and time.monotonic() - last_progress > split.poll_timeout_s:
                raise KafkaSourceError(
                    f"{split.topic}[{split.partition}]: offsets {position}..{split.until_offset}"
                    f" did not arrive within {split.poll_timeout_s}s (deleted, or broker lost "
                    "data)"
                )
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaSourceError(f"{split.topic}[{split.partition}]: {err}")
                offset = msg.offset()
                if offset is None or offset < position:
                    continue
                if offset > position and split.fail_on_data_loss:
                    raise KafkaSourceError(
                        f"{split.topic}[{split.partition}]: offsets {position}..{offset - 1} are "
                        "gone (deleted by retention?); set failOnDataLoss=false to skip them"
                    )
                if offset >= split.until_offset:
                    position = split.until_offset
                    break
                ts_type, ts_ms = msg.timestamp()
                yield (
                    msg.key(),
                    msg.value(),
                    msg.topic(),
                    msg.partition(),
                    offset,
                    datetime.fromtimestamp(ts_ms / 1000, UTC) if ts_type else None,
                    ts_type - 1 if ts_type else -1,
                )
                position = offset + 1
                last_progress = time.monotonic()
    finally:
        consumer.close()


class KafkaDataSource(DataSource):
    """Spark data source ``ticklake-kafka``: see the module docstring for the options."""

    @classmethod
    def name(cls) -> str:
        return "ticklake-kafka"

    def schema(self) -> str:
        return KAFKA_SCHEMA_DDL

    def streamReader(self, schema: StructType) -> KafkaStreamReader:
        return KafkaStreamReader(self.options)
