"""File pruning by the Delta log's statistics; Delta source admission control; Silver's
bounded state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from config.tables import SILVER_QUARANTINE, SILVER_WATERMARKS
from pipeline.schemas import spark_schema
from storage.delta import files_overlapping
from storage.sink import DeltaSink

T0 = datetime(2013, 3, 1, 14, 30, tzinfo=UTC)


def quarantine_rows(offsets: range, start: datetime = T0) -> pa.Table:
    n = len(offsets)
    data = {f.name: pa.nulls(n, f.type) for f in SILVER_QUARANTINE.schema}
    data["offset"] = pa.array(list(offsets), pa.int64())
    data["reason"] = pa.array(["not_json"] * n)
    data["quarantined_at"] = pa.array([start + timedelta(minutes=o) for o in offsets],
                                      SILVER_QUARANTINE.schema.field("quarantined_at").type)
    return pa.table(data, schema=SILVER_QUARANTINE.schema)


def append_files(spark, sink: DeltaSink, data: pa.Table, batch_id: int, files: int) -> None:
    """Append ``data`` as ``files`` Parquet files in one delta-spark commit of ``batch_id``."""
    from pipeline.delta_writes import append_batch

    append_batch(spark.createDataFrame(data.to_pandas(), spark_schema(sink.table))
                 .repartition(files), sink, batch_id)


@pytest.mark.spark
def test_files_overlapping_prunes_by_the_logs_statistics(spark, lake: Path) -> None:
    """Three commits an hour apart: a range inside the second hour selects its file only."""
    sink = DeltaSink(SILVER_QUARANTINE, lake, "app")
    for batch in range(3):
        append_files(spark, sink, quarantine_rows(range(batch * 60, batch * 60 + 10)), batch, 1)
    inside = (T0 + timedelta(minutes=61), T0 + timedelta(minutes=62))
    files = files_overlapping(SILVER_QUARANTINE, lake, "quarantined_at", [inside])
    assert len(files) == 1
    assert files_overlapping(SILVER_QUARANTINE, lake, "quarantined_at",
                             [(T0 - timedelta(days=2), T0 - timedelta(days=1))]) == []


def test_watermarks_only_move_forward(lake: Path) -> None:
    """A batch raises a ticker's watermark to its latest valid event time, never lowers it,
    and adds tickers it has not seen."""
    from pipeline.silver_state import raise_watermarks, watermarks

    sink = DeltaSink(SILVER_WATERMARKS, lake, "app")
    after = raise_watermarks(sink, {}, {"AAA": T0, "BBB": T0}, 0, T0)
    assert watermarks(lake) == after == {"AAA": T0, "BBB": T0}
    later, earlier = T0 + timedelta(hours=1), T0 - timedelta(hours=1)
    after = raise_watermarks(sink, after, {"AAA": later, "BBB": earlier}, 1, T0)
    assert watermarks(lake) == after == {"AAA": later, "BBB": T0}
    assert sink.committed(1)


@pytest.mark.spark
def test_max_files_per_trigger_bounds_each_micro_batch(spark, lake: Path) -> None:
    """Six commits of 2 files each, appended by delta-spark, read by
    delta-spark's stream source with maxFilesPerTrigger=4 under availableNow: every
    micro-batch holds at most 4 files, and every row arrives once."""
    table = replace(SILVER_QUARANTINE, change_data_feed=True)
    sink = DeltaSink(table, lake, "app")
    for batch in range(6):
        append_files(spark, sink, quarantine_rows(range(batch * 20, batch * 20 + 20)), batch, 2)
    batches: list[list[int]] = []
    query = (
        spark.readStream.format("delta").option("maxFilesPerTrigger", 4).load(sink.path)
        .writeStream.option("checkpointLocation", str(lake / "_ckpt"))
        .foreachBatch(lambda df, _id: batches.append([r.offset for r in df.collect()]))
        .trigger(availableNow=True).start()
    )
    query.awaitTermination()
    sizes = [len(b) for b in batches if b]
    assert sizes == [40, 40, 40]  # 2 commits x 2 files x 10 rows per micro-batch
    assert sorted(o for b in batches for o in b) == list(range(120))
