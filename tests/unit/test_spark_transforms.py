"""Silver and Gold transforms on small DataFrames (shared SparkSession)."""

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from config.tables import BRONZE_TICKS
from pipeline.gold import gold_bars, gold_daily_metrics
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


def ticks_frame(spark, rows: list[tuple]):
    schema = "ticker string, event_time timestamp, seq long, tick_id string, price double, volume long"
    return spark.createDataFrame(rows, schema)


def test_bars_take_open_and_close_by_event_time_then_seq(spark) -> None:
    """Open is the first tick by (event_time, seq), close the last, whatever the row order."""
    t = lambda h, m: datetime(2012, 1, 3, h, m, tzinfo=UTC)  # noqa: E731
    rows = [
        ("AAA", t(20, 59), 9, "z", 11.0, 10),   # last by time -> close
        ("AAA", t(14, 30), 2, "b", 10.5, 20),   # same time as next, higher seq
        ("AAA", t(14, 30), 1, "a", 10.0, 30),   # first by (time, seq) -> open
        ("AAA", t(16, 0), 5, "c", 12.0, 0),
        ("AAA", t(17, 0), 6, "d", 9.5, 40),
        ("BBB", t(15, 0), 1, "e", 50.0, 0),
    ]
    bars = {r["ticker"]: r for r in gold_bars(ticks_frame(spark, rows), "1d").collect()}
    a = bars["AAA"]
    assert (a.open, a.high, a.low, a.close, a.volume, a.trade_count) == (10.0, 12.0, 9.5, 11.0, 100, 5)
    assert a.vwap == pytest.approx((11 * 10 + 10.5 * 20 + 10 * 30 + 9.5 * 40) / 100)
    # collect() gives naive datetimes in the session time zone, which is UTC
    assert a.window_start.replace(tzinfo=UTC) == datetime(2012, 1, 3, tzinfo=UTC)
    assert a.window_end.replace(tzinfo=UTC) == datetime(2012, 1, 4, tzinfo=UTC)
    assert bars["BBB"].vwap is None and bars["BBB"].volume == 0


def test_daily_metrics_average_and_sum_per_utc_day(spark) -> None:
    """avg_price is the mean tick price, total_volume the sum, trades the count, per UTC day."""
    rows = [("AAA", datetime(2012, 1, 3, 14, 30, tzinfo=UTC), 1, "a", 10.0, 5),
            ("AAA", datetime(2012, 1, 3, 20, 0, tzinfo=UTC), 2, "b", 14.0, 7),
            ("AAA", datetime(2012, 1, 4, 14, 30, tzinfo=UTC), 3, "c", 20.0, 1)]
    got = {r.trading_date: r for r in gold_daily_metrics(ticks_frame(spark, rows)).collect()}
    assert (got[date(2012, 1, 3)].avg_price, got[date(2012, 1, 3)].total_volume,
            got[date(2012, 1, 3)].trades) == (12.0, 12, 2)
    assert got[date(2012, 1, 4)].avg_price == 20.0


def test_longer_bars_are_the_rollup_of_shorter_ones(spark) -> None:
    """On the same intraday ticks, 5m bars equal the rollup of 1m bars, 1h bars the rollup
    of 5m bars and 1d bars the rollup of 1h bars: first open, max high, min low, last close,
    summed volume, exact decimal volume and count."""
    import pandas as pd

    from pipeline.gold import gold_bars
    from producer.sources.synthetic import MarketClock, SyntheticSource

    clock = MarketClock(datetime(2026, 1, 5, 14, 30, tzinfo=UTC), step_s=9,
                        now=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    ticks = [t.model_dump() for t in SyntheticSource(["AAA", "BBB"], seed=9, count=6000,
                                                      clock=clock).ticks()]
    # exact volumes in eighths (fractional, as FX and crypto volumes are); `volume` whole units
    frame = spark.createDataFrame(
        [(t["ticker"], t["event_time"], t["seq"], t["tick_id"], t["price"],
          round(t["volume"] / 8), t["volume"] / 8) for t in ticks],
        "ticker string, event_time timestamp, seq long, tick_id string, price double, "
        "volume long, volume_decimal decimal(38, 8)")
    bars = {i: gold_bars(frame, i).toPandas().sort_values(["ticker", "window_start"])
            for i in ("1m", "5m", "1h", "1d")}
    # 6.5 h sessions at 9 s per tick: 2,600 ticks a day, so 6,000 ticks span 3 days x 2 tickers
    assert bars["1d"]["trade_count"].sum() == 6000 and len(bars["1d"]) == 6
    assert bars["1d"]["volume_decimal"].sum() == sum(t["volume"] for t in ticks) / 8
    assert any(v != int(v) for v in bars["1m"]["volume_decimal"])  # fractions, summed exactly

    def rollup(short: pd.DataFrame, freq: str) -> pd.DataFrame:
        key = [short["ticker"], short["window_start"].dt.floor(freq)]
        g = short.groupby(key)
        out = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                            "low": g["low"].min(), "close": g["close"].last(),
                            "volume": g["volume"].sum(), "trade_count": g["trade_count"].sum(),
                            "volume_decimal": g["volume_decimal"].sum()})
        return out.reset_index(drop=True)

    assert len(bars["5m"]) < len(bars["1m"]) and len(bars["5m"]) > len(bars["1h"])
    for short, long, freq in (("1m", "5m", "5min"), ("5m", "1h", "h"), ("1h", "1d", "D")):
        expected = rollup(bars[short], freq)
        got = bars[long][expected.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


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
    from pyspark.sql import functions as F

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


TRADED = ["AAPL", "BRK.B", "0700.HK", "VOD.L", "SHOP.TO", "RELIANCE.NS", "^GSPC", "^N225",
          "^AXJO", "^FTSE", "EURUSD=X", "JPY=X", "BTC-USD", "ETH-BTC", "GC=F", "ZZZZ.QQ"]


def test_the_trade_date_in_spark_equals_the_python_rule(spark) -> None:
    """``trading_date_column`` (JVM) and ``config.instruments.trading_date`` (Python) give the
    same trade date for every kind of symbol, every hour of two weeks that hold both US and
    European DST changes and the FX/futures rolls."""
    from config.instruments import trading_date
    from pipeline.gold import trading_date_column

    start = datetime(2024, 3, 7, tzinfo=UTC)  # US DST on 10 March, EU on 31 March 2024
    hours = [start + timedelta(minutes=30 * i) for i in range(2 * 24 * 26)]
    rows = [(t, h) for t in TRADED for h in hours]
    frame = spark.createDataFrame(rows, "ticker string, event_time timestamp")
    got = frame.select("ticker", "event_time", trading_date_column(
        F.col("ticker"), F.col("event_time")).alias("day")).toPandas()
    expected = [trading_date(t, h) for t, h in rows]
    assert len(got) == len(expected)
    pairs = {(r.ticker, r.event_time.to_pydatetime().replace(tzinfo=UTC)): r.day
             for r in got.itertuples()}
    mismatched = [(t, h) for (t, h), day in zip(rows, expected, strict=True)
                  if pairs[(t, h)] != day]
    assert mismatched == []
    # what the rule means, for three markets
    assert trading_date("EURUSD=X", datetime(2024, 3, 10, 22, tzinfo=UTC)).isoformat() == \
        "2024-03-11"  # Sunday 18:00 New York: Monday's FX trade date
    assert trading_date("AAPL", datetime(2024, 3, 9, 1, tzinfo=UTC)).isoformat() == \
        "2024-03-08"  # Friday 20:00 New York
    assert trading_date("^AXJO", datetime(2024, 3, 10, 23, tzinfo=UTC)).isoformat() == \
        "2024-03-11"  # Monday 10:00 Sydney


def test_a_daily_bar_is_the_markets_trade_date(spark) -> None:
    """gold bars_1d and daily metrics group ticks by trade date: EURUSD's Sunday-evening hours
    (New York) open Monday's bar and 17:00 New York starts Tuesday's; a Hong Kong morning that
    is the previous UTC evening stays on its local day; AAPL's ticks keep their UTC day."""
    ticks = [("EURUSD=X", datetime(2024, 3, 10, 22, 0, tzinfo=UTC), 1.09),
             ("EURUSD=X", datetime(2024, 3, 11, 20, 59, tzinfo=UTC), 1.10),
             ("EURUSD=X", datetime(2024, 3, 11, 21, 0, tzinfo=UTC), 1.11),  # 17:00 NY: Tuesday
             ("0700.HK", datetime(2024, 3, 10, 23, 30, tzinfo=UTC), 300.0),  # Mon 07:30 HK
             ("0700.HK", datetime(2024, 3, 11, 7, 59, tzinfo=UTC), 301.0),
             ("AAPL", datetime(2024, 3, 11, 13, 30, tzinfo=UTC), 170.0)]
    frame = spark.createDataFrame(
        [(t, when, i, f"{i:032x}", price, 10) for i, (t, when, price) in enumerate(ticks)],
        "ticker string, event_time timestamp, seq long, tick_id string, price double, volume long")
    bars = gold_bars(frame, "1d").toPandas()
    got = sorted((r.ticker, r.window_start.date().isoformat(), r.trade_count, r.close)
                 for r in bars.itertuples())
    assert got == [("0700.HK", "2024-03-11", 2, 301.0), ("AAPL", "2024-03-11", 1, 170.0),
                   ("EURUSD=X", "2024-03-11", 2, 1.10), ("EURUSD=X", "2024-03-12", 1, 1.11)]
    assert all((r.window_end - r.window_start).days == 1 for r in bars.itertuples())
    metrics = gold_daily_metrics(frame).toPandas()
    assert sorted((r.ticker, r.trading_date.isoformat(), r.trades) for r in metrics.itertuples()) \
        == [("0700.HK", "2024-03-11", 2), ("AAPL", "2024-03-11", 1), ("EURUSD=X", "2024-03-11", 2),
            ("EURUSD=X", "2024-03-12", 1)]
