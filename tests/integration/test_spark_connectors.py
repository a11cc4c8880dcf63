"""The standard connectors the set-up installs: Spark's Kafka source and delta-spark, in the
shared SparkSession and under a plain ``spark-submit``; what they write reads the same with
``spark.read.format("delta")`` and delta-rs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable as RsTable

from config.settings import Settings
from ticklake.broker import ensure_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]

COLUMNS = ["key", "value", "topic", "partition", "offset", "timestamp", "timestampType"]


def produce(settings: Settings, first: int, count: int) -> dict[int, int]:
    """``count`` messages ``first..`` keyed over 7 keys; returns the partition end offsets."""
    ends: dict[int, int] = {}
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})

    def delivered(err: object, msg: object) -> None:
        assert err is None
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    for i in range(first, first + count):
        producer.produce(settings.topic, key=f"K{i % 7}".encode(), value=f"{i}".encode(),
                         on_delivery=delivered)
    assert producer.flush(30) == 0
    return ends


def stream_to_delta(spark, settings: Settings, table: Path, checkpoint: Path) -> None:
    """One ``availableNow`` run: the topic through Spark's Kafka source into a Delta table
    with Delta's streaming sink, 1,000 offsets per micro-batch."""
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", settings.topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 1000)
        .load()
        .writeStream.format("delta")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(str(table))
    )
    query.awaitTermination(120)
    assert not query.isActive and query.exception() is None


def test_kafka_source_into_delta_is_exactly_once_and_reads_the_same_everywhere(
        spark, broker: Settings, tmp_path: Path) -> None:
    """3,000 messages: every (partition, offset) once, in 3+ micro-batches; a second run on the
    same checkpoint adds nothing; 500 more add exactly those. Spark and delta-rs read the same
    rows."""
    settings = broker.with_overrides(topic="connectors.test")
    ensure_topic(settings)
    first_ends = produce(settings, 0, 3000)
    table, checkpoint = tmp_path / "bronze", tmp_path / "checkpoint"
    stream_to_delta(spark, settings, table, checkpoint)
    stream_to_delta(spark, settings, table, checkpoint)  # nothing new: nothing written
    rows = spark.read.format("delta").load(str(table))
    assert rows.columns == COLUMNS
    assert rows.count() == 3000
    assert rows.select("partition", "offset").distinct().count() == 3000
    assert {r["partition"]: r["n"] for r in rows.groupBy("partition").count()
            .withColumnRenamed("count", "n").collect()} == first_ends
    appends = [h for h in RsTable(str(table)).history() if h.get("operation") ==
               "STREAMING UPDATE"]
    assert len(appends) >= 3  # maxOffsetsPerTrigger split the backlog

    ends = produce(settings, 3000, 500)
    stream_to_delta(spark, settings, table, checkpoint)
    rows = spark.read.format("delta").load(str(table))
    assert rows.count() == 3500
    assert sorted(int(r["value"]) for r in rows.select("value").collect()) == list(range(3500))
    assert {r["partition"]: r["m"] for r in rows.groupBy("partition").agg({"offset": "max"})
            .withColumnRenamed("max(offset)", "m").collect()} == {p: e - 1
                                                                   for p, e in ends.items()}
    by_spark = sorted((r["partition"], r["offset"], bytes(r["value"])) for r in
                      rows.select("partition", "offset", "value").collect())
    rs = RsTable(str(table)).to_pyarrow_table(columns=["partition", "offset", "value"])
    assert sorted(zip(rs["partition"].to_pylist(), rs["offset"].to_pylist(),
                      rs["value"].to_pylist(), strict=True)) == by_spark


def test_delta_merge_upserts_and_delta_rs_reads_the_result(spark, tmp_path: Path) -> None:
    """``DeltaTable.merge`` updates matched keys and inserts the others; delta-rs reads the
    merged table."""
    from delta.tables import DeltaTable

    path = str(tmp_path / "bars")
    spark.createDataFrame([("AAA", 1, 10.0), ("BBB", 1, 20.0)],
                          "ticker string, minute int, close double").write.format(
        "delta").save(path)
    updates = spark.createDataFrame([("BBB", 1, 21.0), ("CCC", 1, 30.0)],
                                    "ticker string, minute int, close double")
    (DeltaTable.forPath(spark, path).alias("t")
     .merge(updates.alias("s"), "t.ticker = s.ticker AND t.minute = s.minute")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    expected = [("AAA", 1, 10.0), ("BBB", 1, 21.0), ("CCC", 1, 30.0)]
    assert sorted(tuple(r) for r in spark.read.format("delta").load(path).collect()) == expected
    rs = RsTable(path).to_pyarrow_table()
    assert sorted(zip(*(rs[c].to_pylist() for c in ("ticker", "minute", "close")),
                      strict=True)) == expected


def test_a_plain_spark_submit_loads_both_connectors(tmp_path: Path) -> None:
    """The set-up's spark-defaults.conf is all ``spark-submit`` needs: its driver finds Spark's
    Kafka source and delta-spark, and writes a Delta table delta-rs reads."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from config.settings import Settings
        from pipeline.spark import spark_session
        spark = spark_session(Settings(lake_dir={str(tmp_path)!r}, spark_ui_enabled=False))
        print("extensions", spark.conf.get("spark.sql.extensions"))
        spark.range(4).write.format("delta").save({str(tmp_path / "t")!r})
        spark.stop()
    """))
    spark_submit = Path(sys.executable).parent / "spark-submit"
    done = subprocess.run([str(spark_submit), "--master", "local[1]", str(script)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "extensions io.delta.sql.DeltaSparkSessionExtension" in done.stdout
    assert RsTable(str(tmp_path / "t")).to_pyarrow_table().num_rows == 4
