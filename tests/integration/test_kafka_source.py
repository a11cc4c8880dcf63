"""Spark's Kafka source and the offset probe of the lag metrics against Apache Kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from config.settings import Settings
from pipeline.monitoring import OffsetProbe
from ticklake.broker import ensure_topic

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def topic(broker: Settings) -> tuple[Settings, dict[int, int]]:
    """A 4-partition topic with 5,000 messages spread by key; returns per-partition counts."""
    settings = broker.with_overrides(topic="source.test")
    ensure_topic(settings)
    counts: dict[int, int] = {}
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})

    def delivered(err: object, msg: object) -> None:
        assert err is None
        counts[msg.partition()] = counts.get(msg.partition(), 0) + 1

    for i in range(5000):
        producer.produce(settings.topic, key=f"K{i % 7}".encode(), value=f"{i}".encode(),
                         on_delivery=delivered)
    producer.flush(30)
    return settings, counts


def test_end_offsets_are_the_messages_delivered(topic: tuple[Settings, dict[int, int]]) -> None:
    """The probe's end offsets equal the messages delivered to each partition, and every
    partition starts at 0."""
    settings, counts = topic
    probe = OffsetProbe({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": "probe-test"})
    try:
        tps = probe.partitions([settings.topic])
        assert len(tps) == 4
        ends = probe.latest(tps)
        assert {p: ends[(t, p)] for t, p in tps} == {p: counts.get(p, 0) for p in range(4)}
        assert set(probe.earliest(tps).values()) == {0}
    finally:
        probe.close()


@pytest.mark.spark
def test_max_offsets_per_trigger_reads_everything_once(spark, tmp_path,
                                                       topic: tuple[Settings, dict]) -> None:
    """availableNow with maxOffsetsPerTrigger=1200 reads 5,000 messages in 5 micro-batches,
    each (partition, offset) exactly once, with Spark's Kafka columns."""
    settings, counts = topic
    batches: list[int] = []
    seen: list[tuple[int, int, bytes]] = []

    def collect(df, _batch_id) -> None:
        rows = df.collect()
        batches.append(len(rows))
        seen.extend((r.partition, r.offset, bytes(r.value)) for r in rows)

    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", settings.topic).option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 1200).load()
        .writeStream.option("checkpointLocation", str(tmp_path / "ckpt"))
        .foreachBatch(collect).trigger(availableNow=True).start()
    )
    query.awaitTermination()
    assert sum(batches) == 5000 and max(batches) <= 1200 and len(batches) == 5
    positions = {(p, o) for p, o, _ in seen}
    assert len(positions) == 5000
    assert {p: sum(1 for q, _ in positions if q == p) for p in counts} == counts
    assert sorted(int(v) for _, _, v in seen) == list(range(5000))


def test_watch_prints_every_message_with_its_position(topic: tuple[Settings, dict]) -> None:
    """`ticklake watch --from-beginning` shows each message once with partition:offset."""
    from ticklake.watch import watch_topic

    settings, counts = topic
    lines = list(watch_topic(settings, from_beginning=True, count=5000, idle_s=10))
    positions = {line.split(" ", 1)[0] for line in lines}
    assert len(lines) == len(positions) == 5000
    assert sorted(int(line.rsplit(" ", 1)[1]) for line in lines) == list(range(5000))
