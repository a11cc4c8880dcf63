"""Offset planning of the Kafka source: options, start offsets, admission control and end
offsets (the driver side of :mod:`pipeline.connectors.kafka_source`)."""

from __future__ import annotations

import json
import logging
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
    """Driver-side helper that finds partition ranges (ListOffsets EARLIEST / LATEST)."""

    def __init__(self, conf: dict[str, Any], timeout_s: float = 10.0) -> None:
        from confluent_kafka import Consumer

        self.timeout_s = timeout_s
        self.consumer = Consumer({**conf, "logger": logging.getLogger("ticklake.librdkafka")})

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

    def latest(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offset (high watermark: ListOffsets LATEST) of each partition."""
        from confluent_kafka import TopicPartition

        return {
            tp: self.consumer.get_watermark_offsets(
                TopicPartition(*tp), timeout=self.timeout_s, cached=False
            )[1]
            for tp in tps
        }

    def close(self) -> None:
        self.consumer.close()
