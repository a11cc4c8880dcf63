"""A small lake written with delta-rs (no Spark), for dashboard tests."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from config.tables import (
    BRONZE_TICKS,
    GOLD_ANOMALIES,
    GOLD_BARS_1D,
    GOLD_INDICATORS_1D,
    GOLD_PREDICTIONS,
    SILVER_QUARANTINE,
    SILVER_TICKS,
)
from storage.progress import PROGRESS_DIR
from storage.sink import DeltaSink

BARS = 30
"""Daily bars of AAA: 2012-01-02 .. 2012-01-31, open 10 + d, high 11 + d, low 9 + d, close
10.5 + d."""
ANOMALY_DAYS = (5, 20)
"""Days (0-based) of AAA's two anomaly flags."""
PROCESSED = {"0": 7, "1": 0, "2": 3, "3": 12}
"""Next offset Bronze reads per partition, as its newest progress record says."""

INGEST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _rows(table, rows: list[dict]) -> pa.Table:
    schema = table.schema
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema},
                    schema=schema)


def build(lake: Path) -> dict[str, int]:
    """Write 12 Bronze rows (10 valid, 1 bad, 1 duplicate), Silver, quarantine, 30 daily bars
    of AAA with indicators (SMA 7 = close - 3) and two anomaly flags, forecasts 1 and 5 days
    ahead, and a Bronze progress record (:data:`PROCESSED`). Returns the counts written."""
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
    bars, indicators, anomalies = [], [], []
    for d in range(BARS):
        start = datetime(2012, 1, 2, tzinfo=UTC) + timedelta(days=d)
        bars.append({"ticker": "AAA", "window_start": start, "window_end": start + timedelta(days=1),
                     "open": 10.0 + d, "high": 11.0 + d, "low": 9.0 + d, "close": 10.5 + d,
                     "volume": 1000, "vwap": 10.2 + d, "trade_count": 4, "updated_at": INGEST})
        indicators.append({"ticker": "AAA", "window_start": start, "close": 10.5 + d,
                           "volume": 1000, "sma_7": 7.5 + d, "rsi_14": 50.0 + d / 2})
        if d in ANOMALY_DAYS:
            anomalies.append({"ticker": "AAA", "window_start": start, "metric": "volume",
                              "value": 1000.0, "window_mean": 500.0, "window_std": 100.0,
                              "z_score": 5.0})
    preds = [{"ticker": "AAA", "as_of": date(2012, 1, 31), "target_date": target,
              "predicted_avg_price": price, "lower_80": price - 1, "upper_80": price + 1,
              "naive_avg_price": 40.0, "model_version": "v1", "created_at": INGEST,
              "horizon": h, "model": model}
             for h, target, price, model in ((1, date(2012, 2, 1), 41.0, "lstm"),
                                             (5, date(2012, 2, 7), 40.0, "naive"))]
    for table, rows in ((BRONZE_TICKS, bronze), (SILVER_TICKS, silver),
                        (SILVER_QUARANTINE, quarantine), (GOLD_BARS_1D, bars),
                        (GOLD_INDICATORS_1D, indicators), (GOLD_ANOMALIES, anomalies),
                        (GOLD_PREDICTIONS, preds)):
        DeltaSink(table, lake, "fixture").append(_rows(table, rows), None)
    progress = lake / PROGRESS_DIR
    progress.mkdir()
    (progress / "bronze.jsonl").write_text(json.dumps({
        "job": "bronze", "batch_id": 3, "timestamp": "2026-11-21T09:11:05Z", "rows": 12,
        "processed_rows_per_s": 240.0, "batch_duration_ms": 50,
        "sources": [{"end_offset": {"t": PROCESSED}, "latest_offset": {"t": PROCESSED}}],
    }) + "\n")
    return {"bronze": 12, "silver": 10, "quarantine": 2}
