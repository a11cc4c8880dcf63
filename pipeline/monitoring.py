"""Pipeline health for people and for Prometheus: Kafka lag per partition, each streaming
job's newest micro-batch, table facts.

The same figures feed the dashboard's Pipeline page and the ``/metrics`` endpoint of the
prediction API (Prometheus text format, ``prometheus_client``). Metric names and labels
(docs/operations.md, "Alerts and metrics"):

- ``ticklake_job_rows_per_second{job}``, ``ticklake_job_batch_rows{job}``,
  ``ticklake_job_batch_duration_seconds{job}``, ``ticklake_job_batch_id{job}``,
  ``ticklake_job_last_batch_timestamp_seconds{job}`` (Unix time, UTC): the newest
  micro-batch of each job (``<lake>/_progress``);
- ``ticklake_kafka_end_offset{topic,partition}``, ``ticklake_kafka_processed_offset{topic,
  partition}``, ``ticklake_kafka_lag{topic,partition}`` (records Bronze has not read yet) and
  ``ticklake_broker_up`` (1 when the broker answered within the timeout);
- ``ticklake_table_rows{table}``, ``ticklake_table_files{table}``,
  ``ticklake_table_version{table}``, ``ticklake_last_ingest_timestamp_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config.errors import BrokerUnavailable
from config.settings import Settings
from storage.facts import lake_status
from storage.progress import latest_progress

BROKER_TIMEOUT_S = 1.0
"""How long a lag reading waits for the broker (the dashboard and a scrape stay fast when it
is down)."""



class OffsetProbe:
    """Partitions and their earliest / end offsets (Kafka's ListOffsets), with confluent-kafka.

    Args:
        conf: a librdkafka consumer configuration (:func:`config.kafka.client_config`).
        timeout_s: how long each request may wait for the broker.
    """

    def __init__(self, conf: dict[str, Any], timeout_s: float = 10.0) -> None:
        from confluent_kafka import Consumer

        self.timeout_s = timeout_s
        self.consumer = Consumer(conf)

    def partitions(self, topics: list[str]) -> list[tuple[str, int]]:
        """All (topic, partition) of ``topics``; topics that do not exist yet have none.

        Raises:
            BrokerUnavailable: the broker did not answer within ``timeout_s``.
        """
        from confluent_kafka import KafkaException

        try:
            meta = self.consumer.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot reach the Kafka broker: {exc}") from exc
        found: list[tuple[str, int]] = []
        for topic in topics:
            tmeta = meta.topics.get(topic)
            if tmeta is not None and tmeta.error is None:
                found.extend((topic, p) for p in sorted(tmeta.partitions))
        return found

    def earliest(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Log-start offset of each partition (ListOffsets EARLIEST)."""
        return {tp: self._watermarks(tp)[0] for tp in tps}

    def latest(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offset (high watermark: ListOffsets LATEST) of each partition."""
        return {tp: self._watermarks(tp)[1] for tp in tps}

    def _watermarks(self, tp: tuple[str, int]) -> tuple[int, int]:
        from confluent_kafka import TopicPartition

        low, high = self.consumer.get_watermark_offsets(TopicPartition(*tp),
                                                        timeout=self.timeout_s, cached=False)
        return int(low), int(high)

    def close(self) -> None:
        self.consumer.close()


def processed_offsets(lake_dir: Path, topic: str) -> dict[int, int]:
    """Next offset Bronze will read per partition of ``topic``: the end offset of the newest
    micro-batch of the job that reads the topic (``<lake>/_progress/bronze.jsonl``, or
    ``live.jsonl`` on a lake the live query keeps); empty before its first batch."""
    progress = latest_progress(lake_dir)
    record = progress.get("bronze") or progress.get("live") or {}
    for source in record.get("sources") or []:
        ends = (source.get("end_offset") or {}).get(topic)
        if isinstance(ends, dict):
            return {int(p): int(o) for p, o in ends.items()}
    return {}


def broker_end_offsets(settings: Settings, timeout_s: float = BROKER_TIMEOUT_S
                       ) -> tuple[dict[int, int] | None, str]:
    """End offset (high watermark) of each partition of the topic, and the broker's state.

    Returns:
        ``(offsets, state)``: offsets None and state ``"unreachable: ..."`` when the broker
        does not answer within ``timeout_s``; state ``"up"`` otherwise.
    """
    from confluent_kafka import KafkaException

    from config.kafka import client_config

    try:
        probe = OffsetProbe(client_config(settings, "consumer", **{
            "group.id": "ticklake-monitoring",  # assigned partitions only: never joins
            "log_level": 2,  # a broker that is down is shown on the page, not logged per retry
        }), timeout_s)
    except Exception as err:  # noqa: BLE001 (librdkafka config errors: say so, do not fail)
        return None, f"unreachable: {err}"
    try:
        tps = probe.partitions([settings.topic])
        ends = probe.latest(tps)
        return {p: o for (_, p), o in ends.items()}, "up"
    except (BrokerUnavailable, KafkaException) as err:  # down, or went down meanwhile
        return None, f"unreachable: {err}"
    finally:
        probe.close()


def lag_table(ends: dict[int, int] | None, processed: dict[int, int]) -> pd.DataFrame:
    """One row per partition: partition, end_offset, processed_offset, lag (records Bronze
    has not read yet: the whole partition where it has read nothing; null where the end is
    unknown). Offsets are nullable integers (``Int64``)."""
    partitions = sorted(set(ends or {}) | set(processed))
    rows = []
    for p in partitions:
        end = (ends or {}).get(p)
        done = processed.get(p)
        lag = None if end is None else max(0, end - (done or 0))
        rows.append({"partition": p, "end_offset": end, "processed_offset": done, "lag": lag})
    frame = pd.DataFrame(rows, columns=["partition", "end_offset", "processed_offset", "lag"])
    return frame.astype("Int64")


class LakeCollector(Collector):
    """A Prometheus collector that reads the lake and the broker at scrape time (names in the
    module docstring).

    Args:
        settings: the lake directory, broker and topic.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lake, topic = self.settings.lake_dir, self.settings.topic
        jobs = {
            "rows_per_second": ("Processed rows per second of the newest micro-batch.",
                                "processed_rows_per_s", 1.0),
            "batch_rows": ("Input rows of the newest micro-batch.", "rows", 1.0),
            "batch_duration_seconds": ("Duration of the newest micro-batch.",
                                       "batch_duration_ms", 0.001),
            "batch_id": ("Id of the newest micro-batch.", "batch_id", 1.0),
        }
        progress = latest_progress(lake)
        for name, (doc, key, factor) in jobs.items():
            family = GaugeMetricFamily(f"ticklake_job_{name}", doc, labels=["job"])
            for job, record in progress.items():
                if record.get(key) is not None:
                    family.add_metric([job], float(record[key]) * factor)
            yield family
        stamp = GaugeMetricFamily("ticklake_job_last_batch_timestamp_seconds",
                                  "When the newest micro-batch ran (Unix time).", labels=["job"])
        for job, record in progress.items():
            if record.get("timestamp"):
                stamp.add_metric([job], pd.Timestamp(record["timestamp"]).timestamp())
        yield stamp
        ends, state = broker_end_offsets(self.settings)
        yield GaugeMetricFamily("ticklake_broker_up", "1 when the broker answered.",
                                value=1.0 if state == "up" else 0.0)
        lag = lag_table(ends, processed_offsets(lake, topic))
        for column, doc in (("end_offset", "End offset (high watermark) per partition."),
                            ("processed_offset", "Next offset Bronze reads per partition."),
                            ("lag", "Records Bronze has not read yet per partition.")):
            family = GaugeMetricFamily(f"ticklake_kafka_{column}", doc,
                                       labels=["topic", "partition"])
            for row in lag.itertuples():
                value = getattr(row, column)
                if not pd.isna(value):
                    family.add_metric([topic, str(row.partition)], float(value))
            yield family
        status = lake_status(lake)
        for key, doc in (("rows", "Rows per table."), ("files", "Data files per table."),
                         ("version", "Delta version per table.")):
            family = GaugeMetricFamily(f"ticklake_table_{key}", doc, labels=["table"])
            for table, facts in status["tables"].items():
                if facts:
                    family.add_metric([table], float(facts[key]))
            yield family
        if status["last_ingest_time"]:
            yield GaugeMetricFamily(
                "ticklake_last_ingest_timestamp_seconds", "Newest Bronze ingest time (Unix).",
                value=datetime.fromisoformat(status["last_ingest_time"]).timestamp())
