"""Benchmark: producer throughput and the Python Kafka source's read rate on this machine.

Starts a tansu broker on a free 127.0.0.1 port, publishes N replayed real ticks with the
idempotent producer, then reads the topic with `ticklake-kafka` under Trigger.AvailableNow
into Spark's `noop` sink. Prints msg/s for both (Spark start-up excluded from the read rate).

    .venv/bin/python bench/kafka_source.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import itertools
import time

from common import bench_lake

from producer.publisher import publish
from producer.sources.replay import ReplaySource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
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
            spark.readStream.format("ticklake-kafka")
            .option("kafka.bootstrap.servers", settings.bootstrap_servers)
            .option("subscribe", settings.topic).option("startingOffsets", "earliest").load()
            .writeStream.format("noop").option("checkpointLocation", str(tmp / "ckpt"))
            .trigger(availableNow=True).start()
        )
        query.awaitTermination()
        total_s = time.perf_counter() - started
        progress = query.recentProgress
        rows = sum(p["numInputRows"] for p in progress)
        busy_s = sum(p["durationMs"].get("triggerExecution", 0) for p in progress) / 1000
        print(f"read:    {rows:,} rows in {len(progress)} micro-batch(es), {busy_s:.1f} s of "
              f"trigger execution = {rows / busy_s:,.0f} rows/s ({total_s:.1f} s with query "
              "start-up)")
        spark.stop()


if __name__ == "__main__":
    main()
