"""Silver's micro-batch writer on small batches, and the hooks live mode writes Bronze and
Gold through."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS, SILVER_WATERMARKS
from pipeline.schemas import spark_schema
from storage.delta import read_table

pytestmark = pytest.mark.spark
T = datetime(2012, 1, 3, 14, 30, tzinfo=UTC)
RECEIVED = T + timedelta(days=1)  # the batches' ingest time: no tick is in the future


def tick(tick_id: str, ticker: str = "AAA", at: datetime = T, **extra: object) -> bytes:
    body = {"schema_version": 1, "tick_id": tick_id, "ticker": ticker,
            "event_time": at.isoformat().replace("+00:00", "Z"), "price": 10.0, "volume": 5,
            "source": "test", "seq": 1, **extra}
    return json.dumps(body).encode()


def bronze_rows(spark, values: list[bytes | None], first_offset: int = 0, partitions: int = 3):
    """Bronze rows spread over three Kafka partitions, in ``partitions`` Spark partitions."""
    rows = [{"key": None, "value": v, "topic": "t", "partition": i % 3,
             "offset": first_offset + i, "timestamp": RECEIVED, "timestampType": 0,
             "ingest_time": RECEIVED} for i, v in enumerate(values)]
    arrow = pa.Table.from_pylist(rows, schema=BRONZE_TICKS.schema)
    return spark.createDataFrame(arrow.to_pandas(),
                                 schema=spark_schema(BRONZE_TICKS)).repartition(partitions)


def write_batches(spark, lake: Path, batches: list[list[bytes | None]]):
    from pipeline.silver import classify_with_settings, silver_batch_writer

    settings = Settings(lake_dir=lake)
    write = silver_batch_writer(settings, "app")
    offset = 0
    for batch_id, values in enumerate(batches):
        frame = classify_with_settings(bronze_rows(spark, values, offset), settings,
                                       now=F.col("ingest_time"))
        write(frame, batch_id, None, None)
        offset += len(values)


def test_duplicates_and_late_ticks_across_micro_batches_go_to_quarantine(
    spark, tmp_path: Path
) -> None:
    """Four micro-batches: batch 0 holds an in-batch duplicate and a malformed record; batch 1
    repeats a tick of batch 0 and holds a tick 2 h behind its watermark, quarantined as
    already in Silver and as late; Silver takes every other tick once and the watermarks end
    at each ticker's latest tick."""
    first = [tick(f"a{i:031x}", "AAA" if i % 2 else "BBB", T + timedelta(seconds=i))
             for i in range(40)]
    batches = [
        [*first, first[3], b"{not json"],  # an in-batch duplicate, a malformed record
        [*(tick(f"b{i:031x}", "AAA", T + timedelta(minutes=5, seconds=i)) for i in range(20)),
         first[7], tick("c" * 32, "AAA", T - timedelta(hours=2))],
        [tick(f"d{i:031x}", "BBB", T + timedelta(minutes=10, seconds=i)) for i in range(20)],
        [tick(f"e{i:031x}", "AAA", T + timedelta(minutes=15, seconds=i)) for i in range(20)],
    ]
    write_batches(spark, tmp_path, batches)
    held = {r["offset"]: (r["reason"], r["detail"]) for r in
            read_table(SILVER_QUARANTINE, tmp_path).to_pylist()}
    assert held == {
        40: ("duplicate_tick_id", "earlier in the same micro-batch"),
        41: ("not_json", held[41][1]),
        62: ("duplicate_tick_id", "already in silver.ticks"),
        63: ("late", held[63][1]),
    }
    assert read_table(SILVER_TICKS, tmp_path).num_rows == 40 + 20 + 20 + 20
    marks = {r["ticker"]: r["watermark"]
             for r in read_table(SILVER_WATERMARKS, tmp_path).to_pylist()}
    assert marks == {"AAA": T + timedelta(minutes=15, seconds=19),
                     "BBB": T + timedelta(minutes=10, seconds=19)}


def test_live_modes_hooks_write_bronze_first_and_aggregate_the_ticks_silver_took(
    spark, lake: Path
) -> None:
    """Live mode's use of the writer: Bronze is appended from the classified rows before
    quarantine's commit and gets every record as it came from Kafka (bytes, key, position,
    timestamps), valid or not; the ticks handed to ``after_silver`` give the partial bars of
    the ticks Silver then holds, whatever the split into tasks; a replay of the batch calls
    neither hook, returns None and adds no row anywhere."""
    from pipeline.bars import partial_bars
    from pipeline.delta_writes import append_batch, job_sink
    from pipeline.gold import batch_partial_bars
    from pipeline.silver import bronze_of, classify_with_settings, silver_batch_writer

    settings = Settings(lake_dir=lake)
    values = [tick(f"{i:032d}", "AAA", T + timedelta(seconds=i % 50, minutes=i % 20), seq=i,
                   price=10.0 + i % 7, volume=1 + i % 5) for i in range(60)]
    values += [values[0], b"{", None]  # a duplicate, two bad ones
    source = bronze_rows(spark, values, partitions=3)
    write = silver_batch_writer(settings, "app")
    bronze = job_sink(BRONZE_TICKS, settings, "app")
    updated_at = datetime(2026, 1, 1, tzinfo=UTC)
    intervals = ("1m", "1h", "1d")
    calls: list[str] = []

    def to_bronze(classified) -> None:
        calls.append("bronze")
        assert read_table(SILVER_QUARANTINE, lake).num_rows == 0  # before quarantine
        append_batch(bronze_of(classified), bronze, 0)

    def to_bars(ticks) -> pa.Table:
        calls.append("bars")
        return batch_partial_bars(ticks, intervals, updated_at)

    classified = classify_with_settings(source, settings, now=F.col("ingest_time"))
    partials = write(classified, 0, to_bronze, to_bars)
    assert calls == ["bronze", "bars"]
    by_offset = {r["offset"]: r for r in read_table(BRONZE_TICKS, lake).to_pylist()}
    assert by_offset == {r["offset"]: r for r in source.toArrow().to_pylist()}
    assert [by_offset[i]["value"] for i in range(len(values))] == values
    assert by_offset[0]["timestampType"] == 0 and by_offset[0]["key"] is None
    assert read_table(SILVER_TICKS, lake).num_rows == 60
    assert sorted(r["reason"] for r in read_table(SILVER_QUARANTINE, lake).to_pylist()) == [
        "duplicate_tick_id", "not_json", "null_value"]
    expected = partial_bars(read_table(SILVER_TICKS, lake), intervals, updated_at)
    assert partials.num_rows == expected.num_rows > 60 // 20
    assert partials.sort_by([("interval", "ascending"), ("window_start", "ascending")]) \
        .to_pylist() == expected.sort_by([("interval", "ascending"),
                                          ("window_start", "ascending")]).to_pylist()

    assert write(classified, 0, to_bronze, to_bars) is None  # a replay
    assert calls == ["bronze", "bars"]
    assert [read_table(t, lake).num_rows for t in (BRONZE_TICKS, SILVER_TICKS,
                                                  SILVER_QUARANTINE)] == [63, 60, 3]
