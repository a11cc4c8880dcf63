"""Exactly-once Delta writes (delta-rs app transactions), without Spark."""

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from config.tables import GOLD_DAILY_METRICS, SILVER_QUARANTINE
from storage.sink import DeltaSink


def quarantine_rows(n: int, reason: str = "not_json") -> pa.Table:
    rows = [{"reason": reason, "detail": "d", "raw_value": b"x", "topic": "t", "partition": 0,
             "offset": i} for i in range(n)]
    return pa.Table.from_pylist(rows).append_column(
        "tick_id", pa.nulls(n, pa.string()))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(len(table), field.type))
    return table.select(schema.names).cast(schema)


def test_a_replayed_batch_is_skipped(lake: Path) -> None:
    """Batch 0 written twice lands once; batch 1 then lands; the version is recorded."""
    sink = DeltaSink(SILVER_QUARANTINE, lake, "app-a")
    data = conform(quarantine_rows(3), SILVER_QUARANTINE.schema)
    assert sink.append(data, 0) is True
    assert sink.append(data, 0) is False
    assert sink.append(data, 1) is True
    table = DeltaTable(str(SILVER_QUARANTINE.path(lake)))
    assert table.to_pyarrow_dataset().count_rows() == 6
    assert table.transaction_version("app-a") == 1


def test_another_app_id_is_not_confused_with_the_first(lake: Path) -> None:
    """A new checkpoint (new app id) starting again at batch 0 is written."""
    data = conform(quarantine_rows(2), SILVER_QUARANTINE.schema)
    DeltaSink(SILVER_QUARANTINE, lake, "app-a").append(data, 0)
    assert DeltaSink(SILVER_QUARANTINE, lake, "app-b").append(data, 0) is True
    assert DeltaTable(str(SILVER_QUARANTINE.path(lake))).to_pyarrow_dataset().count_rows() == 4


def test_upsert_updates_by_key_and_skips_replays(lake: Path) -> None:
    """MERGE on (ticker, trading_date): a second batch updates in place, a replay is skipped."""
    import datetime as dt

    sink = DeltaSink(GOLD_DAILY_METRICS, lake, "gold-x")
    day = dt.date(2012, 1, 3)
    first = conform(pa.Table.from_pylist([{"trading_date": day, "ticker": "AAA",
                                           "avg_price": 1.0, "total_volume": 5, "trades": 1}]),
                    GOLD_DAILY_METRICS.schema)
    second = conform(pa.Table.from_pylist([{"trading_date": day, "ticker": "AAA",
                                            "avg_price": 2.0, "total_volume": 9, "trades": 2}]),
                     GOLD_DAILY_METRICS.schema)
    assert sink.upsert(first, 0) and sink.upsert(second, 1)
    assert sink.upsert(first, 1) is False
    rows = DeltaTable(str(GOLD_DAILY_METRICS.path(lake))).to_pyarrow_table().to_pylist()
    assert [(r["avg_price"], r["total_volume"], r["trades"]) for r in rows] == [(2.0, 9, 2)]


def test_a_merged_table_can_be_read_with_a_ticker_filter(lake: Path) -> None:
    """After a MERGE, delta-rs file statistics of string columns are string_view; reading with
    a ticker filter (as the Gold job does each micro-batch) still returns exactly that ticker."""
    import datetime as dt

    import pyarrow.compute as pc

    from storage.delta import read_table

    sink = DeltaSink(GOLD_DAILY_METRICS, lake, "gold-y")
    rows = [{"trading_date": dt.date(2012, 1, d), "ticker": t, "avg_price": float(d),
             "total_volume": d, "trades": 1} for d in (3, 4) for t in ("AAA", "BBB")]
    batch = conform(pa.Table.from_pylist(rows), GOLD_DAILY_METRICS.schema)
    assert sink.upsert(batch.slice(0, 2), 0) and sink.upsert(batch, 1)
    got = read_table(GOLD_DAILY_METRICS, lake, ["ticker", "avg_price"],
                     where=pc.field("ticker").isin(["BBB"]))
    assert sorted(got.to_pylist(), key=lambda r: r["avg_price"]) == [
        {"ticker": "BBB", "avg_price": 3.0}, {"ticker": "BBB", "avg_price": 4.0}]


def test_a_merge_that_loses_a_race_with_compaction_is_retried(lake: Path, monkeypatch) -> None:
    """A real conflict: compaction commits between the MERGE's read of the table and its
    commit (the MERGE read files compaction removed), so delta-rs refuses the commit; the sink
    checks the batch id again, merges again on the new snapshot and commits once."""
    import storage.delta as delta_module
    from config.tables import SILVER_WATERMARKS

    t0, t1 = datetime(2013, 1, 1, tzinfo=UTC), datetime(2014, 1, 1, tzinfo=UTC)

    def marks(**by_ticker: datetime) -> pa.Table:
        return pa.Table.from_pylist([{"ticker": k, "watermark": v, "updated_at": t0}
                                     for k, v in by_ticker.items()],
                                    schema=SILVER_WATERMARKS.schema)

    sink = DeltaSink(SILVER_WATERMARKS, lake, "app")
    for batch_id, ticker in enumerate("ABC"):
        sink.upsert(marks(**{ticker: t0}), batch_id)
    merges: list[int] = []

    class RacedByCompaction(DeltaTable):
        def merge(self, *args, **kwargs):
            merges.append(self.version())
            if len(merges) == 1:  # the first attempt: compaction lands before its commit
                assert DeltaTable(self.table_uri).optimize.compact()["numFilesRemoved"] == 3
            return super().merge(*args, **kwargs)

    monkeypatch.setattr(delta_module, "DeltaTable", RacedByCompaction)
    sink = DeltaSink(SILVER_WATERMARKS, lake, "app")  # its table handle is now a raced one
    assert sink.upsert(marks(A=t1), 3)
    assert merges == [3, 4]  # read version 3, lost to compaction's version 4, merged again
    table = DeltaTable(sink.path)
    assert table.transaction_version("app") == 3 and table.version() == 5
    got = {r["ticker"]: r["watermark"] for r in table.to_pyarrow_table().to_pylist()}
    assert got == {"A": t1, "B": t0, "C": t0}


def test_an_older_predictions_table_gains_the_new_columns_in_place(lake: Path) -> None:
    """gold/predictions as an older ticklake made it (no horizon, no model): the next write adds
    both columns with one metadata commit, the old row keeps its values and reads null there,
    and the new rows merge on the new keys."""
    from datetime import date

    from deltalake import write_deltalake

    from config.tables import GOLD_PREDICTIONS
    from storage.delta import read_table

    old_schema = pa.schema([f for f in GOLD_PREDICTIONS.schema
                            if f.name not in ("horizon", "model")])
    path = GOLD_PREDICTIONS.path(lake)
    old_row = {"ticker": "AAA", "as_of": date(2013, 3, 1), "target_date": date(2013, 3, 4),
               "predicted_avg_price": 10.5, "lower_80": 10.0, "upper_80": 11.0,
               "naive_avg_price": 10.2, "model_version": "v0",
               "created_at": datetime(2026, 11, 1, tzinfo=UTC)}
    write_deltalake(str(path), pa.Table.from_pylist([old_row], old_schema))
    old_files = set(DeltaTable(str(path)).file_uris())
    new_rows = [{**old_row, "model_version": "v1", "horizon": h, "model": "naive",
                 "target_date": t} for h, t in ((1, date(2013, 3, 4)), (5, date(2013, 3, 8)))]
    sink = DeltaSink(GOLD_PREDICTIONS, lake, "train")
    sink.upsert(pa.Table.from_pylist(new_rows, GOLD_PREDICTIONS.schema), None)
    sink.upsert(pa.Table.from_pylist(new_rows, GOLD_PREDICTIONS.schema), None)  # idempotent
    table = DeltaTable(str(path))
    assert set(table.schema().to_arrow().names) == set(GOLD_PREDICTIONS.schema.names)
    assert old_files <= set(table.file_uris())  # the old file was not rewritten
    rows = sorted(read_table(GOLD_PREDICTIONS, lake).to_pylist(),
                  key=lambda r: (r["model_version"], r["horizon"] or 0))
    assert [(r["model_version"], r["horizon"], r["model"]) for r in rows] == [
        ("v0", None, None), ("v1", 1, "naive"), ("v1", 5, "naive")]
    assert rows[0]["predicted_avg_price"] == 10.5
