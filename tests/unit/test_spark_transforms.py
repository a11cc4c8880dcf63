"""Silver transforms on small DataFrames (shared SparkSession)."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from config.tables import BRONZE_TICKS
from pipeline.schemas import spark_schema
from pipeline.silver import classify_ticks, split_batch

pytestmark = pytest.mark.spark
T = datetime(2012, 1, 3, 14, 30, tzinfo=UTC)


def message(tick_id: str, price: object = 10.0, **extra: object) -> bytes:
    body = {"schema_version": 1, "tick_id": tick_id, "ticker": "AAA",
            "event_time": "2012-01-03T14:30:00Z", "price": price, "volume": 5,
            "source": "test", "seq": 1, **extra}
    return json.dumps(body).encode()


def bronze_frame(spark, values: list[bytes | None]):
    rows = [{"key": b"AAA", "value": v, "topic": "t", "partition": 0, "offset": i,
             "timestamp": T, "timestampType": 0, "ingest_time": T} for i, v in enumerate(values)]
    arrow = pa.Table.from_pylist(rows, schema=BRONZE_TICKS.schema)
    return spark.createDataFrame(arrow.to_pandas(), schema=spark_schema(BRONZE_TICKS))


def test_classify_types_valid_ticks_and_gives_reasons(spark) -> None:
    """Valid messages are typed; bad ones carry their reason; every row is kept."""
    values = [message("a" * 32), b"not json", message("b" * 32, price=-1), None]
    out = classify_ticks(bronze_frame(spark, values), 65536, 300).toArrow()
    by_offset = {r["offset"]: r for r in out.to_pylist()}
    assert len(by_offset) == 4
    assert by_offset[0]["reason"] is None and by_offset[0]["price"] == 10.0
    assert by_offset[0]["event_time"] == T and by_offset[0]["ticker"] == "AAA"
    assert [by_offset[i]["reason"] for i in (1, 2, 3)] == [
        "not_json", "price_not_positive", "null_value"]
    assert by_offset[1]["raw_value"] == b"not json"


def test_duplicates_in_batch_and_in_silver_go_to_quarantine(spark) -> None:
    """The second copy of a tick_id and one already in Silver are quarantined as duplicates."""
    values = [message("a" * 32), message("a" * 32), message("c" * 32), b"{"]
    classified = classify_ticks(bronze_frame(spark, values), 65536, 300)
    existing = spark.createDataFrame([("c" * 32,)], "tick_id string")
    accepted, rejected = (frame.toArrow().sort_by("offset")
                          for frame in split_batch(classified, existing))
    assert accepted.column("tick_id").to_pylist() == ["a" * 32]
    reasons = sorted(zip(rejected.column("offset").to_pylist(),
                         rejected.column("reason").to_pylist(), strict=True))
    assert reasons == [(1, "duplicate_tick_id"), (2, "duplicate_tick_id"), (3, "not_json")]
    assert len(accepted) + len(rejected) == 4


def test_ticks_behind_their_ticker_watermark_are_quarantined_as_late(spark) -> None:
    """With AAA's watermark at 14:30 and 1 h allowed lateness, a 12:00 AAA tick is late (by
    2.5 h), a 14:00 one is not, nor is a 12-year-old backfill tick (source ``backfill``, sent
    on purpose); BBB has no watermark yet, so its old tick is accepted."""
    values = [
        message("a" * 32, event_time="2012-01-03T12:00:00Z"),
        message("b" * 32, event_time="2012-01-03T14:00:00Z"),
        message("c" * 32, event_time="2000-01-03T14:00:00Z", ticker="BBB"),
        message("d" * 32, event_time="2000-01-03T14:00:00Z", source="backfill"),
    ]
    classified = classify_ticks(bronze_frame(spark, values), 65536, 300)
    marks = spark.createDataFrame([("AAA", T)], "ticker string, watermark timestamp")
    accepted, rejected = (frame.toArrow() for frame in split_batch(classified, None, marks,
                                                                   allowed_lateness_s=3600))
    assert sorted(accepted.column("tick_id").to_pylist()) == ["b" * 32, "c" * 32, "d" * 32]
    [late] = rejected.to_pylist()
    assert late["reason"] == "late" and late["tick_id"] == "a" * 32
    assert late["detail"].startswith("9000 s behind the AAA watermark")


def test_the_summary_ranges_only_ticks_that_can_repeat_a_silver_tick(spark) -> None:
    """The duplicate check's event ranges leave out ticks after their ticker's watermark
    (Silver holds none, and a duplicate has its original's event time); a ticker with no
    watermark has no Silver ticks. The latest event time per ticker counts every valid tick."""
    from pipeline.silver_state import summarize

    values = [message("a" * 32, event_time="2012-01-03T14:00:00Z"),
              message("b" * 32, event_time="2012-01-03T15:00:00Z"),
              message("c" * 32, event_time="2012-01-02T10:00:00Z", ticker="BBB"),
              message("d" * 32, event_time="2012-01-02T09:00:00Z", ticker="BBB", price=-1),
              b"not json"]
    classified = classify_ticks(bronze_frame(spark, values), 65536, 300)
    marks = spark.createDataFrame([("AAA", T)], "ticker string, watermark timestamp")
    summary = summarize(classified, marks)
    at_14 = datetime(2012, 1, 3, 14, tzinfo=UTC)
    assert summary.event_ranges == [(at_14, at_14)]
    assert summary.latest == {"AAA": datetime(2012, 1, 3, 15, tzinfo=UTC),
                              "BBB": datetime(2012, 1, 2, 10, tzinfo=UTC)}
    assert summary.invalid == 2  # the negative price and the value that is not JSON
    assert summarize(classified.where(F.col("reason").isNull())).event_ranges == []
    assert summarize(classified.where(F.col("reason").isNull())).invalid == 0


def test_the_driver_keeps_a_bounded_number_of_finished_jobs(spark) -> None:
    """A long-running job's driver forgets finished jobs beyond spark.ui.retainedJobs (200,
    not Spark's 1,000), so what it keeps of them stays bounded however many micro-batches run."""
    from pipeline.spark import UI_RETENTION

    context = spark.sparkContext
    kept = int(UI_RETENTION["spark.ui.retainedJobs"])
    assert int(context.getConf().get("spark.ui.retainedJobs")) == kept
    context.setJobGroup("retention-test", "many tiny jobs")
    try:
        numbers = context._jvm.java.util.ArrayList()
        numbers.add(1)
        rdd = context._jsc.parallelize(numbers, 1)  # a JVM-only RDD: no Python worker per job
        for _ in range(kept + 40):
            rdd.count()
    finally:
        context._jsc.clearJobGroup()  # id, description and interrupt flag, as set above
    retained = context.statusTracker().getJobIdsForGroup("retention-test")
    # Spark trims in steps of 10% of the limit once it is exceeded
    assert kept * 0.85 <= len(retained) <= kept


def test_the_driver_jvm_starts_with_its_whole_heap_committed(spark) -> None:
    """spark_driver_pretouch (on by default): the JVM the session started has committed its
    whole heap (-Xms = spark.driver.memory, every page touched), so its resident size cannot
    grow by expanding the heap under load."""
    jvm = spark.sparkContext._jvm
    runtime = jvm.java.lang.Runtime.getRuntime()
    flags = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert "-XX:+AlwaysPreTouch" in flags
    assert spark.sparkContext.getConf().get("spark.driver.memory") == "1g"
    # G1 reports Xmx less one survivor region as the max; committed = the initial heap
    assert runtime.totalMemory() >= 0.95 * runtime.maxMemory()
    assert runtime.maxMemory() > 0.9 * 1024**3
