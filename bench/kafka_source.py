"""Benchmark: producer throughput and Spark's Kafka source's read rate on this machine.

Starts an Apache Kafka broker on a free 127.0.0.1 port, publishes N replayed real ticks with the
idempotent producer, then reads the topic with Spark's Kafka source (`kafka`) under
Trigger.AvailableNow into Spark's `noop` sink. Prints msg/s for both (Spark start-up excluded
from the read rate), and the read rate against the reference measured in the same run: plain
confluent-kafka consumers reading the same topic into Python tuples, one partition after the
other, in this process. The source reads in ``--batches`` micro-batches; the rate after the first one leaves
out the first batch's start-up (code generation, consumers' connections).

    .venv/bin/python bench/kafka_source.py [--messages 200000] [--batches 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from common import bench_lake, rows_per_s
from confluent_kafka import Consumer, TopicPartition

from config.settings import Settings
from pipeline.monitoring import OffsetProbe
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.progress import progress_record


def plain_consumer_rate(settings: Settings) -> float:
    """Rows/s of plain confluent-kafka consumers reading the whole topic into the source's row
    tuples (key, value, topic, partition, offset, timestamp ms, timestamp type), one partition
    after the other up to its end offset, in this process: the reference for the Spark
    source's read rate (which reads each partition in a task of its own)."""
    conf = {"bootstrap.servers": settings.bootstrap_servers, "group.id": "bench-reference",
            "enable.auto.commit": False}
    probe = OffsetProbe({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": "bench-reference"})
    try:  # the end offsets (ListOffsets)
        ends = {p: end for (_, p), end in probe.latest(probe.partitions([settings.topic])).items()}
    finally:
        probe.close()
    rows: list[tuple[object, ...]] = []
    started = time.perf_counter()
    for partition, end in ends.items():
        consumer = Consumer(conf)
        consumer.assign([TopicPartition(settings.topic, partition, 0)])
        position = 0
        while position < end:
            for msg in consumer.consume(min(10_000, end - position), timeout=1.0):
                if msg.error() is not None:
                    continue
                ts_type, ts_ms = msg.timestamp()
                rows.append((msg.key(), msg.value(), msg.topic(), msg.partition(), msg.offset(),
                             ts_ms, ts_type))
                position = msg.offset() + 1
        consumer.close()
    elapsed = time.perf_counter() - started
    assert len(rows) == sum(ends.values()), (len(rows), ends)
    return len(rows) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000,
                        help="replayed ticks to publish and read (>= 1)")
    parser.add_argument("--batches", type=int, default=10,
                        help="micro-batches to read them in, 1..messages (maxOffsetsPerTrigger "
                        "= messages / batches)")
    args = parser.parse_args()
    if args.messages < 1:
        parser.error(f"--messages {args.messages}: must be >= 1")
    if not 1 <= args.batches <= args.messages:
        parser.error(f"--batches {args.batches}: must be between 1 and --messages "
                     f"({args.messages})")
    with bench_lake("kafka-source") as (settings, tmp):
        source = ReplaySource(list(settings.tickers))
        ticks = itertools.islice(itertools.cycle(list(source.ticks())), args.messages)
        started = time.perf_counter()
        report = publish(ticks, settings, total=args.messages, progress=False)
        produce_s = time.perf_counter() - started
        print(f"produce: {report.produced:,} messages in {produce_s:.1f} s = "
              f"{report.produced / produce_s:,.0f} msg/s (acks=all, idempotent)")

        from pipeline.spark import spark_session

        spark = spark_session(settings, "ticklake-bench")
        started = time.perf_counter()
        query = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", settings.bootstrap_servers)
            .option("subscribe", settings.topic).option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", args.messages // args.batches)
            .load()
            .writeStream.format("noop").option("checkpointLocation", str(tmp / "ckpt"))
            .trigger(availableNow=True).start()
        )
        query.awaitTermination()
        total_s = time.perf_counter() - started
        records = [progress_record(json.loads(p.json)) for p in query.recentProgress]
        busy = [r for r in records if r["rows"]]
        rows = sum(r["rows"] for r in busy)
        busy_s = sum(r["batch_duration_ms"] for r in busy) / 1000
        later_rate = rows_per_s(busy[1:]) if len(busy) > 1 else float("nan")
        print(f"read:    {rows:,} rows in {len(busy)} micro-batch(es), {busy_s:.1f} s of "
              f"trigger execution = {rows / busy_s:,.0f} rows/s ({total_s:.1f} s with query "
              f"start-up); after the first micro-batch {later_rate:,.0f} rows/s")
        spark.stop()
        reference = plain_consumer_rate(settings)
        print(f"reference: plain confluent-kafka consumers, same topic: {reference:,.0f} rows/s;"
              f" the source reads at {rows / busy_s / reference:.2f} x that "
              f"({later_rate / reference:.2f} x after the first micro-batch)")


if __name__ == "__main__":
    main()
