"""Offset planning of the Kafka source: options, start offsets, admission control and true
end offsets (the driver side of :mod:`pipeline.connectors.kafka_source`).

End offsets: some brokers (tansu 0.6) answer ListOffsets(LATEST) with less than the true end,
while the high watermark in a fetch response is right (docs/architecture.md, "Measured facts").
:class:`OffsetProbe` therefore takes the maximum of ListOffsets and a fetch-based high
watermark, which is correct on Apache Kafka too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from config.errors import ConnectorError

log = logging.getLogger(__name__)

Offsets = dict[str, dict[str, int]]
"""Spark Kafka offsets: topic -> partition (as a string) -> next offset to read."""


class KafkaSourceError(ConnectorError):
    """The Kafka source cannot go on (bad option, unreachable broker, offsets lost)."""


def librdkafka_config(options: Mapping[str, str]) -> dict[str, Any]:
    """The ``kafka.*`` options without their prefix, as librdkafka configuration.

    Raises:
        KafkaSourceError: ``kafka.bootstrap.servers`` is missing.
    """
    conf: dict[str, Any] = {
        k[len("kafka."):]: v for k, v in options.items() if k.lower().startswith("kafka.")
    }
    if "bootstrap.servers" not in conf:
        raise KafkaSourceError("option 'kafka.bootstrap.servers' is required (HOST:PORT[,...])")
    conf.setdefault("group.id", "ticklake-spark-source")
    conf["enable.auto.commit"] = False
    conf["enable.auto.offset.store"] = False
    return conf


def split_by_max_rows(start: Offsets, end: Offsets, max_rows: int) -> Offsets:
    """Cap the range ``start -> end`` at ``max_rows`` messages, split in proportion to lag.

    Like Spark's Kafka source ``maxOffsetsPerTrigger``: each partition gets
    ``floor(max_rows * lag_p / total_lag)``, the remainder goes to the partitions with the
    largest lag, and every partition with lag moves by at least one message while the budget
    lasts, so a query always makes progress.

    Returns:
        New end offsets with ``sum(end - start) <= max_rows``.
    """
    lags = {
        (t, p): max(0, off - start.get(t, {}).get(p, 0))
        for t, parts in end.items() for p, off in parts.items()
    }
    total = sum(lags.values())
    if total <= max_rows:
        return end
    share = {tp: (max_rows * lag) // total for tp, lag in lags.items()}
    left = max_rows - sum(share.values())
    for tp in sorted(lags, key=lambda k: (-lags[k], k)):
        if left <= 0:
            break
        if lags[tp] > share[tp]:
            share[tp] += 1
            left -= 1
    capped: Offsets = {}
    for (t, p), n in share.items():
        capped.setdefault(t, {})[p] = start.get(t, {}).get(p, 0) + n
    return capped


def parse_starting_offsets(value: str, topics: list[str]) -> str | Offsets:
    """``"earliest"``, ``"latest"`` or Spark's per-partition JSON (-2 = earliest, -1 = latest).

    Raises:
        KafkaSourceError: anything else, or JSON naming a topic that is not subscribed.
    """
    text = value.strip()
    if text.lower() in ("earliest", "latest"):
        return text.lower()
    try:
        parsed = json.loads(text)
        offsets = {t: {str(p): int(o) for p, o in parts.items()} for t, parts in parsed.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise KafkaSourceError(
            f"startingOffsets={value!r}: use 'earliest', 'latest' or JSON like "
            '{"topic": {"0": 23, "1": -2}} (-2 = earliest, -1 = latest)'
        ) from exc
    unknown = sorted(set(offsets) - set(topics))
    if unknown:
        raise KafkaSourceError(f"startingOffsets names topics {unknown} not in subscribe={topics}")
    return offsets


class OffsetProbe:
    """Driver-side helper that finds true partition ranges (see the module docstring)."""

    def __init__(self, conf: dict[str, Any], timeout_s: float = 10.0) -> None:
        from confluent_kafka import Consumer

        self.timeout_s = timeout_s
        self.consumer = Consumer(
            {
                **conf,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,
                "queued.min.messages": 1,
                # with one queued message the partition is "full"; fetch again at once, not
                # after librdkafka's default 1 s back-off (every probe took ~1 s)
                "fetch.queue.backoff.ms": 1,
                "max.partition.fetch.bytes": 65_536,
                "logger": logging.getLogger("ticklake.librdkafka"),
            }
        )
        self.known_end: dict[tuple[str, int], int] = {}

    def partitions(self, topics: list[str]) -> list[tuple[str, int]]:
        """All (topic, partition) of ``topics``; topics that do not exist yet have none."""
        from confluent_kafka import KafkaException

        try:
            meta = self.consumer.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise KafkaSourceError(f"cannot reach the Kafka broker: {exc}") from exc
        found: list[tuple[str, int]] = []
        for topic in topics:
            tmeta = meta.topics.get(topic)
            if tmeta is not None and tmeta.error is None:
                found.extend((topic, p) for p in sorted(tmeta.partitions))
        return found

    def earliest(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Log-start offset of each partition (ListOffsets EARLIEST)."""
        from confluent_kafka import TopicPartition

        return {
            tp: self.consumer.get_watermark_offsets(
                TopicPartition(*tp), timeout=self.timeout_s, cached=False
            )[0]
            for tp in tps
        }

    def latest(
        self, tps: list[tuple[str, int]], wait_s: float | None = None
    ) -> dict[tuple[str, int], int]:
        """End offset (high watermark) of each partition, right on tansu and Apache Kafka.

        ListOffsets(LATEST) gives a lower bound (asked once per partition: later probes start
        from the end the previous one found); the consumer is then assigned there and the
        fetch responses' high watermark (librdkafka's cached value) gives the true end. The
        probe reads at most one fetch (64 KiB) per partition, and waits for a message or the
        end-of-partition event of each partition at most ``wait_s`` (default: the probe's
        timeout). tansu may answer a fetch at a partition's end with its last record batch,
        all below the offset asked for: librdkafka drops it and fetches again, so neither a
        message nor the end event comes until newer records arrive (docs/architecture.md).
        A partition still waiting then gets the largest end known (ListOffsets, an earlier
        probe, the cached high watermark): never more than its true end.
        """
        from confluent_kafka import KafkaError, TopicPartition

        if not tps:
            return {}
        # ListOffsets only for a partition this probe has not seen: from a known end the
        # fetch's high watermark is exact anyway, and tansu's ListOffsets takes longer the
        # more records its in-memory log holds (4 partitions: 7 ms at 100k records, 55 ms at
        # 1.6M; docs/architecture.md), which every trigger would pay.
        listed = {
            tp: self.consumer.get_watermark_offsets(
                TopicPartition(*tp), timeout=self.timeout_s, cached=False
            )[1]
            for tp in tps if tp not in self.known_end
        }
        start = {tp: max(listed.get(tp, 0), self.known_end.get(tp, 0)) for tp in tps}
        self.consumer.assign([TopicPartition(t, p, start[(t, p)]) for t, p in tps])
        # librdkafka keeps a partition's last high watermark across assignments: one from the
        # previous probe's last fetch (after it took its ends) must not count as news
        stale = {tp: self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)[1]
                 for tp in tps}
        pending = set(tps)
        deadline = time.monotonic() + (self.timeout_s if wait_s is None else wait_s)
        try:
            while pending and time.monotonic() < deadline:
                for msg in self.consumer.consume(500, timeout=0.05):
                    err = msg.error()
                    if err is None or err.code() == KafkaError._PARTITION_EOF:
                        pending.discard((msg.topic(), msg.partition()))
                for tp in list(pending):  # a new fetch response beyond the start tells the end
                    high = self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)[1]
                    if high is not None and high > max(start[tp], stale[tp] or -1):
                        pending.discard(tp)
            ends = {}
            for tp in tps:
                high = self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)[1]
                ends[tp] = max(start[tp], high if high is not None else -1)
        finally:
            self.consumer.unassign()
        if pending and wait_s is None:
            log.warning("no fetch response within %ss for %s; using the largest end known",
                        self.timeout_s, sorted(pending))
        self.known_end.update(ends)
        return ends

    def close(self) -> None:
        self.consumer.close()
