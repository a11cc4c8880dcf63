"""Files written on executors and committed by the driver; Delta source admission control;
Silver's bounded state."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from config.tables import SILVER_QUARANTINE, SILVER_WATERMARKS, Table
from storage.delta import batch_files, files_overlapping, read_table
from storage.files import write_data_files
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


def write_and_commit(sink: DeltaSink, data: pa.Table, batch_id: int,
                     partition_by: tuple[str, ...] = ()) -> bool:
    records = pa.Table.from_batches(list(write_data_files(
        iter(data.to_batches(max_chunksize=7)), sink.path, sink.table.schema,
        list(partition_by), max_rows_per_file=10))).to_pylist()
    return sink.commit_files(records, batch_id)


def test_files_written_apart_are_committed_once_with_statistics(lake: Path) -> None:
    """25 rows become 3 files (at most 10 rows each) committed in one version that records
    the batch id and per-file statistics; committing batch 0 again adds nothing."""
    sink = DeltaSink(SILVER_QUARANTINE, lake, "app")
    assert write_and_commit(sink, quarantine_rows(range(25)), 0)
    got = read_table(SILVER_QUARANTINE, lake)
    assert sorted(got.column("offset").to_pylist()) == list(range(25))
    assert len(batch_files(sink.path, "app", 0)) == 3
    assert '"remove"' not in (Path(sink.path) / "_delta_log" / f"{1:020d}.json").read_text()
    assert sink.committed(0) and not sink.committed(1)
    assert not write_and_commit(sink, quarantine_rows(range(25)), 0)  # a replayed batch
    assert read_table(SILVER_QUARANTINE, lake).num_rows == 25
    stats = [json.loads(line)["add"]["stats"] for line in
             (Path(sink.path) / "_delta_log" / f"{1:020d}.json").read_text().splitlines()
             if '"add"' in line]
    assert sorted(json.loads(s)["numRecords"] for s in stats) == [5, 10, 10]
    assert all(json.loads(s)["nullCount"]["detail"] == json.loads(s)["numRecords"] for s in stats)


def test_partitioned_files_go_to_their_partition_folders(lake: Path) -> None:
    """A table partitioned by day gets one folder per day and reads back whole."""
    schema = pa.schema([("day", pa.date32()), ("v", pa.int64())])
    table = Table("test.parts", "test/parts", schema)
    DeltaSink(table, lake, "app")  # creates it (unpartitioned), then replace with partitions
    import shutil

    from deltalake import DeltaTable

    shutil.rmtree(table.path(lake))
    DeltaTable.create(str(table.path(lake)), schema, partition_by=["day"])
    sink = DeltaSink(table, lake, "app")
    data = pa.table({"day": [date(2020, 1, 1)] * 3 + [date(2020, 1, 2)] * 2,
                     "v": [1, 2, 3, 4, 5]}, schema=schema)
    assert write_and_commit(sink, data, 0, ("day",))
    assert sorted(p.name for p in table.path(lake).glob("day=*")) == ["day=2020-01-01",
                                                                       "day=2020-01-02"]
    back = read_table(table, lake).to_pylist()
    assert sorted((r["day"], r["v"]) for r in back) == [(r["day"], r["v"])
                                                         for r in data.to_pylist()]


def test_files_overlapping_prunes_by_the_logs_statistics(lake: Path) -> None:
    """Three commits an hour apart: a range inside the second hour selects its file only."""
    sink = DeltaSink(SILVER_QUARANTINE, lake, "app")
    for batch in range(3):
        write_and_commit(sink, quarantine_rows(range(batch * 60, batch * 60 + 10)), batch)
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
    """Six commits of 2 files each, written on executors and committed by delta-rs, read by
    delta-spark's stream source with maxFilesPerTrigger=4 under availableNow: every
    micro-batch holds at most 4 files, and every row arrives once."""
    table = replace(SILVER_QUARANTINE, change_data_feed=True)
    sink = DeltaSink(table, lake, "app")
    for batch in range(6):
        write_and_commit(sink, quarantine_rows(range(batch * 20, batch * 20 + 20)), batch)
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
