"""A small lake written with delta-rs (no Spark), for dashboard tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from config.tables import BRONZE_TICKS, GOLD_BARS_1D, GOLD_PREDICTIONS, SILVER_QUARANTINE, SILVER_TICKS
from storage.sink import DeltaSink

INGEST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _rows(table, rows: list[dict]) -> pa.Table:
    schema = table.schema
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema},
                    schema=schema)


def build(lake: Path) -> dict[str, int]:
    """Write 12 Bronze rows (10 valid, 1 bad, 1 duplicate), Silver, quarantine, 30 daily bars
    of AAA and a prediction. Returns the counts written."""
    bronze, silver = [], []
    for i in range(12):
        ingest = INGEST + timedelta(days=i % 2, minutes=i)
        bronze.append({"key": b"AAA", "value": f'{{"n": {i}}}'.encode(), "topic": "t",
                       "partition": 0, "offset": i, "timestamp": ingest, "timestampType": 0,
                       "ingest_time": ingest})
        if i < 10:
            silver.append({"tick_id": f"{i:032x}", "ticker": "AAA", "event_time": ingest,
                           "price": 10.0 + i, "volume": 5, "source": "t", "seq": i,
                           "schema_version": 1, "topic": "t", "partition": 0, "offset": i,
                           "ingest_time": ingest})
    quarantine = [
        {"reason": "not_json", "detail": "Expecting value", "raw_value": b"garbage",
         "topic": "t", "partition": 0, "offset": 10, "quarantined_at": INGEST},
        {"reason": "duplicate_tick_id", "detail": "already in silver.ticks",
         "tick_id": f"{0:032x}", "ticker": "AAA", "raw_value": b"{}", "topic": "t",
         "partition": 0, "offset": 11, "quarantined_at": INGEST},
    ]
    bars = []
    for d in range(30):
        start = datetime(2012, 1, 2, tzinfo=UTC) + timedelta(days=d)
        bars.append({"ticker": "AAA", "window_start": start, "window_end": start + timedelta(days=1),
                     "open": 10.0 + d, "high": 11.0 + d, "low": 9.0 + d, "close": 10.5 + d,
                     "volume": 1000, "vwap": 10.2 + d, "trade_count": 4, "updated_at": INGEST})
    preds = [{"ticker": "AAA", "as_of": date(2012, 1, 31), "target_date": date(2012, 2, 1),
              "predicted_avg_price": 41.0, "naive_avg_price": 40.0, "model_version": "v1",
              "created_at": INGEST, "horizon": 1, "model": "lstm"}]
    for table, rows in ((BRONZE_TICKS, bronze), (SILVER_TICKS, silver),
                        (SILVER_QUARANTINE, quarantine), (GOLD_BARS_1D, bars),
                        (GOLD_PREDICTIONS, preds)):
        DeltaSink(table, lake, "fixture").append(_rows(table, rows), None)
    return {"bronze": 12, "silver": 10, "quarantine": 2}
