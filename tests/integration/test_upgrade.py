"""A v1 lake made by the previous release, upgraded in place, goes on with v2 and v1 ticks."""

from __future__ import annotations

import tarfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pytest
from confluent_kafka import Producer

from config.settings import Settings
from config.tables import GOLD_BARS_1D, SILVER_QUARANTINE, SILVER_TICKS, bar_table
from producer.messages import TickMessage, make_tick_id
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.delta import open_table, read_table
from storage.facts import lake_status
from storage.maintenance import upgrade
from ticklake.broker import ensure_topic
from ticklake.verify import compare_with_lake

pytestmark = [pytest.mark.integration, pytest.mark.spark]

V1_LAKE = Path(__file__).resolve().parents[1] / "data" / "v1_lake.tar.gz"
TOPIC, DAYS, BAD = "v1.ticks", 20, b'{"schema_version":1,"ticker":"IBM"}'
"""As ``tests/data/make_v1_lake.py`` wrote the lake."""


def v2_tick(ticker: str, when: datetime, price: float, volume: str, seq: int) -> TickMessage:
    kind, currency = ("crypto", "USD") if ticker == "BTC-USD" else ("equity", "USD")
    return TickMessage(schema_version=2, ticker=ticker, event_time=when, price=price,
                       volume=Decimal(volume), source="test", seq=seq, asset_class=kind,
                       currency=currency,
                       tick_id=make_tick_id("test", ticker, when, price, Decimal(volume), str(seq)))


def test_a_v1_lake_is_upgraded_in_place_and_goes_on(spark, broker: Settings, tmp_path) -> None:
    """The lake the previous release left (tests/data/v1_lake.tar.gz: 20 days of IBM, v1
    ticks, tables and checkpoints): ``upgrade`` adds the v2 columns with one metadata commit
    per table and rewrites no file; then the jobs resume from their checkpoints with v2 ticks
    (a fractional volume merged into a bar the v1 release wrote, a crypto ticker) and a v1 tick
    (upcast), and the lake reconciles with nothing read twice."""
    from pipeline.jobs import run_jobs

    with tarfile.open(V1_LAKE) as archive:
        archive.extractall(tmp_path, filter="data")
    lake = tmp_path / "lake"
    settings = broker.with_overrides(lake_dir=lake, topic=TOPIC)
    silver_files = set(open_table(SILVER_TICKS, lake).file_uris())  # type: ignore[union-attr]
    old_bars = read_table(GOLD_BARS_1D, lake, ["window_start", "volume", "volume_decimal"])
    assert old_bars.num_rows == DAYS and old_bars.column("volume_decimal").null_count == DAYS

    report = upgrade(lake)
    assert report["silver.ticks"]["added"] == ["asset_class", "currency", "volume_decimal"]
    assert report["silver.ticks"]["version_after"] == report["silver.ticks"]["version_before"] + 1
    assert all(report[f"gold.bars_{i}"]["added"] == ["volume_decimal"]
               for i in ("1m", "5m", "1h", "1d"))
    assert report["bronze.ticks"]["added"] == [] == report["silver.quarantine"]["added"]
    assert set(open_table(SILVER_TICKS, lake).file_uris()) == silver_files  # no rewrite
    assert all(not entry["added"] for entry in upgrade(lake).values())  # idempotent

    # The topic as the v1 release left it (same messages, so the same offsets), then new ones.
    assert ensure_topic(settings) == 4
    replay = ReplaySource(["IBM"], limit_days=DAYS)
    publish(replay.ticks(), settings, progress=False)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(TOPIC, key=b"IBM", value=BAD)
    producer.flush(30)
    last_day = datetime(2013, 3, 1, 20, 59, 30, tzinfo=UTC)  # after IBM's 15:59 NY close tick
    v1_next_day = TickMessage(
        schema_version=1, ticker="IBM", event_time=datetime(2013, 3, 4, 14, 30, tzinfo=UTC),
        price=202.5, volume=300, source="test", seq=99,
        tick_id=make_tick_id("test", "IBM", datetime(2013, 3, 4, 14, 30, tzinfo=UTC), 202.5,
                             300, "v1"))
    new = [v2_tick("IBM", last_day, 202.0, "0.5", 1),
           v2_tick("BTC-USD", datetime(2024, 3, 1, 10, tzinfo=UTC), 61234.5, "2012.25", 2),
           v2_tick("BTC-USD", datetime(2024, 3, 1, 11, tzinfo=UTC), 61500.0, "0.00000001", 3),
           v1_next_day]
    publish(iter(new), settings, progress=False)
    no_currency = new[0].to_json_bytes().replace(b',"currency":"USD"', b"")
    producer.produce(TOPIC, key=b"IBM", value=no_currency)
    producer.flush(30)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)

    recon = lake_status(lake)["reconciliation"]
    v1_bronze = DAYS * 4 + 1
    assert recon["bronze"] == v1_bronze + len(new) + 1  # resumed: the old offsets not re-read
    assert recon["silver"] == DAYS * 4 + len(new) and recon["balanced"]
    assert recon["by_reason"] == {"missing_field": 2}
    bad = read_table(SILVER_QUARANTINE, lake).filter(pc.field("raw_value") == no_currency)
    assert "currency" in bad.column("detail")[0].as_py()

    silver = {r["tick_id"]: r for r in read_table(SILVER_TICKS, lake).to_pylist()}
    assert sum(r["volume_decimal"] is None for r in silver.values()) == DAYS * 4  # not rewritten
    fractional = silver[new[0].tick_id]
    assert (fractional["schema_version"], fractional["asset_class"], fractional["currency"],
            fractional["volume_decimal"], fractional["volume"]) == (2, "equity", "USD",
                                                                    Decimal("0.5"), 0)
    upcast = silver[v1_next_day.tick_id]
    assert (upcast["schema_version"], upcast["asset_class"], upcast["currency"],
            upcast["volume_decimal"], upcast["volume"]) == (1, "equity", "USD", Decimal(300), 300)

    bars = {(r["ticker"], r["window_start"].date()): r
            for r in read_table(GOLD_BARS_1D, lake).to_pylist()}
    source_last = replay.bars.iloc[-1]
    merged = bars[("IBM", date(2013, 3, 1))]  # written by v1, then merged with a v2 tick
    assert merged["volume"] == int(source_last["volume"])
    assert merged["volume_decimal"] == int(source_last["volume"]) + Decimal("0.5")
    assert merged["close"] == 202.0 and merged["trade_count"] == 5
    day_ticks = [r for r in silver.values()
                 if r["ticker"] == "IBM" and r["event_time"].date() == date(2013, 3, 1)]
    exact = [(r["price"], r["volume_decimal"] or Decimal(r["volume"])) for r in day_ticks]
    vwap = sum(p * float(v) for p, v in exact) / float(sum(v for _, v in exact))
    assert merged["vwap"] == pytest.approx(vwap, rel=1e-12)
    btc = bars[("BTC-USD", date(2024, 3, 1))]
    assert btc["volume_decimal"] == Decimal("2012.25000001") and btc["volume"] == 2012
    assert bars[("IBM", date(2013, 3, 4))]["volume_decimal"] == 300
    btc_hours = read_table(bar_table("1h"), lake).filter(pc.field("ticker") == "BTC-USD")
    assert sorted(btc_hours.column("volume_decimal").to_pylist()) == [
        Decimal("0.00000001"), Decimal("2012.25")]

    # The 19 days the v1 release wrote and nothing touched since are still the source's bars.
    round_trip = compare_with_lake(replay.bars, lake)["tickers"]["IBM"]
    assert (round_trip["equal"], round_trip["different"]) == (DAYS - 1, 1)
