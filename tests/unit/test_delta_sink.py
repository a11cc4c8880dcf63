"""Exactly-once Delta writes (delta-rs app transactions), without Spark."""

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
