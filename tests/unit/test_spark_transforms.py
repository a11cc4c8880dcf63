"""Silver transforms and the one-pass routed write on small DataFrames (shared SparkSession)."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from config.tables import BRONZE_TICKS
from pipeline.schemas import spark_schema
from pipeline.silver import classify_ticks, split_batch
from pipeline.writes import TaskAggregate

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


def test_one_pass_routes_rows_to_quarantine_and_silver_exactly_once(spark, lake) -> None:
    """route_on_executors writes both tables from one pass: each row lands in the table of its
    verdict with that table's columns; a replay of the batch after quarantine committed (a
    crash between the two commits) adds only Silver's rows, and a second replay nothing."""

    from config.tables import SILVER_QUARANTINE, SILVER_TICKS
    from pipeline.silver import verdicts
    from pipeline.writes import route_on_executors
    from storage.delta import read_table
    from storage.sink import DeltaSink

    values = [message("a" * 32), b"{", message("a" * 32), message("b" * 32, price=-2)]
    judged = verdicts(classify_ticks(bronze_frame(spark, values), 65536, 300))
    rejected = F.col("reason").isNotNull()
    quarantine = DeltaSink(SILVER_QUARANTINE, lake, "app")
    silver = DeltaSink(SILVER_TICKS, lake, "app")
    assert route_on_executors(judged, [(quarantine, rejected)], 0) == [3]  # crash after this
    assert route_on_executors(judged, [(quarantine, rejected), (silver, ~rejected)], 0) == [0, 1]
    assert route_on_executors(judged, [(quarantine, rejected), (silver, ~rejected)], 0) == [0, 0]
    ticks = read_table(SILVER_TICKS, lake).to_pylist()
    assert [(t["offset"], t["tick_id"], t["price"]) for t in ticks] == [(0, "a" * 32, 10.0)]
    held = sorted(read_table(SILVER_QUARANTINE, lake).to_pylist(), key=lambda r: r["offset"])
    assert [(r["offset"], r["reason"]) for r in held] == [
        (1, "not_json"), (2, "duplicate_tick_id"), (3, "price_not_positive")]
    assert [r["raw_value"] for r in held] == values[1:]
    assert held[1]["detail"] == "earlier in the same micro-batch"


def test_the_routed_write_aggregates_the_ticks_it_commits(spark, lake) -> None:
    """Gold's partial bars computed by the tasks that write Silver's ticks (live mode) equal
    the partial bars of the ticks Silver then holds, whatever the split into tasks; a replay
    of the batch (Silver committed already) gives no aggregate, so Gold reads the commit."""
    from config.tables import SILVER_QUARANTINE, SILVER_TICKS
    from pipeline.bars import partial_bars
    from pipeline.gold import ticks_to_partial_bars
    from pipeline.silver import verdicts
    from pipeline.writes import route_and_aggregate
    from storage.delta import read_table
    from storage.sink import DeltaSink

    values = [message(f"{i:032d}", price=10.0 + i % 7, volume=1 + i % 5, seq=i,
                      event_time=f"2012-01-03T14:{30 + i % 20:02d}:{i % 60:02d}Z")
              for i in range(60)] + [message("0" * 32), b"{"]  # a duplicate, a bad one
    judged = verdicts(classify_ticks(bronze_frame(spark, values).repartition(3), 65536, 300))
    rejected = F.col("reason").isNotNull()
    targets = [(DeltaSink(SILVER_QUARANTINE, lake, "app"), rejected),
               (DeltaSink(SILVER_TICKS, lake, "app"), ~rejected)]
    updated_at = datetime(2026, 1, 1, tzinfo=UTC)
    intervals = ("1m", "1h", "1d")
    function, combine = ticks_to_partial_bars(intervals, updated_at)
    aggregate = TaskAggregate(1, function, combine)
    counts, partials = route_and_aggregate(judged, targets, 0, aggregate)
    assert counts == [2, 60]
    assert partials is not None
    expected = partial_bars(read_table(SILVER_TICKS, lake), intervals, updated_at)
    assert partials.num_rows == expected.num_rows > 60 // 20
    assert partials.to_pylist() == expected.to_pylist()
    assert route_and_aggregate(judged, targets, 0, aggregate) == ([0, 0], None)


def test_a_copy_takes_every_classified_row_as_its_bronze_row(spark, lake) -> None:
    """Live mode writes Bronze from the classified rows in the pass that routes them: Bronze
    gets every record as it came from Kafka (bytes, key, position, timestamps), valid or not,
    and is committed first, so a replay after a crash right after its commit (Bronze holds
    the batch, quarantine and Silver do not) adds no Bronze row and all the others."""
    from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS
    from pipeline.silver import BRONZE_FROM_CLASSIFIED, verdicts
    from pipeline.writes import Copy, route_and_aggregate
    from storage.delta import read_table
    from storage.sink import DeltaSink

    values = [message("a" * 32), b"{", None, message("a" * 32), message("b" * 32)]
    source = bronze_frame(spark, values)
    judged = verdicts(classify_ticks(source.repartition(2), 65536, 300))
    rejected = F.col("reason").isNotNull()
    quarantine = DeltaSink(SILVER_QUARANTINE, lake, "app")
    silver = DeltaSink(SILVER_TICKS, lake, "app")
    bronze = Copy(DeltaSink(BRONZE_TICKS, lake, "app"), BRONZE_FROM_CLASSIFIED)
    assert route_and_aggregate(judged, [], 0, copies=[bronze]) == ([5], None)  # crash here
    targets = [(quarantine, rejected), (silver, ~rejected)]
    assert route_and_aggregate(judged, targets, 0, copies=[bronze]) == ([3, 2, 0], None)
    assert route_and_aggregate(judged, targets, 0, copies=[bronze]) == ([0, 0, 0], None)
    by_offset = {r["offset"]: r for r in read_table(BRONZE_TICKS, lake).to_pylist()}
    assert by_offset == {r["offset"]: r for r in source.toArrow().to_pylist()}
    assert [by_offset[i]["value"] for i in range(5)] == values
    assert by_offset[0]["key"] == b"AAA" and by_offset[0]["timestampType"] == 0
    assert sorted(t["offset"] for t in read_table(SILVER_TICKS, lake).to_pylist()) == [0, 4]


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
