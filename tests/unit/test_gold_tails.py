"""Gold's indicator refresh over a lake: long histories from a tail, short ones whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from config.tables import GOLD_BARS_1D, GOLD_BARS_1H, GOLD_INDICATORS_1D
from pipeline.bars import partial_bars
from pipeline.indicators import indicators_1d, indicators_1h
from storage.delta import read_table
from storage.sink import DeltaSink

START = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
DAYS = {"AAA": 150, "BBB": 12, "CCC": 2}  # one long history, two short ones


def ticks() -> pa.Table:
    """Per ticker, three ticks an hour apart on each of its first DAYS weekdays."""
    rows = []
    for ticker, days in DAYS.items():
        day = START
        for d in range(days):
            while day.weekday() >= 5:
                day += timedelta(days=1)
            for h in range(3):
                rows.append({"ticker": ticker, "event_time": day + timedelta(hours=h),
                             "seq": 3 * d + h, "tick_id": f"{ticker}{d:04d}{h}".ljust(32, "0"),
                             "price": 100.0 + 10 * np.sin(d / 7 + h) + d / 50, "volume": 100 + d,
                             "volume_decimal": None})
            day += timedelta(days=1)
    table = pa.Table.from_pylist(rows)
    return table.set_column(table.schema.get_field_index("volume_decimal"), "volume_decimal",
                            pa.nulls(len(table), pa.decimal128(38, 8)))


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A lake with the bars of :func:`ticks` and AAA's stored daily indicators; also returns
    each interval's bars as pandas."""
    bars = partial_bars(ticks(), ("1h", "1d"), datetime(2025, 1, 1, tzinfo=UTC))
    frames = {}
    for interval, table in (("1h", GOLD_BARS_1H), ("1d", GOLD_BARS_1D)):
        mine = bars.filter(pa.compute.equal(bars.column("interval"), interval))
        DeltaSink(table, tmp_path, "app").upsert(mine.drop_columns(["interval"]), 0)
        frames[interval] = read_table(table, tmp_path).to_pandas()
    daily = frames["1d"]
    stored = indicators_1d(daily[daily["ticker"] == "AAA"].sort_values("window_start")
                           .reset_index(drop=True))
    DeltaSink(GOLD_INDICATORS_1D, tmp_path, "app").upsert(
        pa.Table.from_pandas(stored, preserve_index=False), 0)
    return tmp_path, frames


def whole(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    return frame[frame["ticker"] == ticker].sort_values("window_start").reset_index(drop=True)


def test_each_ticker_gets_the_indicators_of_its_whole_history_with_one_read_for_the_short(
    lake: tuple[Path, dict[str, pd.DataFrame]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Touched from its 120th day (AAA: a tail of 40 bars and the stored state) or from its
    last day (BBB, CCC: too short for a tail), and from an hour with 4 or more hourly bars
    before it (AAA) or fewer (BBB, CCC), each ticker's refreshed daily and hourly rows
    equal the indicators computed over its whole history; the two short histories are read
    in one read per bar table, not one per ticker."""
    from pipeline import gold_indicators

    root, frames = lake
    reads: list[str] = []
    real = gold_indicators.read_table
    monkeypatch.setattr(gold_indicators, "read_table",
                        lambda table, *a, **k: reads.append(table.name) or real(table, *a, **k))
    day0 = {"AAA": whole(frames["1d"], "AAA")["window_start"].iloc[120].to_pydatetime(),
            **{t: whole(frames["1d"], t)["window_start"].iloc[-1].to_pydatetime()
               for t in ("BBB", "CCC")}}
    daily, _ = gold_indicators.daily_update(root, day0)
    hour0 = {t: whole(frames["1h"], t)["window_start"].iloc[i].to_pydatetime()
             for t, i in (("AAA", -2), ("BBB", 1), ("CCC", 2))}  # BBB, CCC: < 4 bars before
    hourly = gold_indicators.hourly_update(root, hour0)
    assert reads == [GOLD_BARS_1D.name, GOLD_INDICATORS_1D.name, GOLD_BARS_1D.name,
                     GOLD_BARS_1H.name, GOLD_BARS_1H.name]
    for ticker in DAYS:
        for got, expected, start in (
            (daily, indicators_1d(whole(frames["1d"], ticker)), day0[ticker]),
            (hourly, indicators_1h(whole(frames["1h"], ticker)), hour0[ticker]),
        ):
            mine = got[got["ticker"] == ticker].reset_index(drop=True)
            want = expected[expected["window_start"] >= start].reset_index(drop=True)
            assert len(mine) == len(want) > 0
            assert list(mine["window_start"]) == list(want["window_start"])
            for column in want.columns.drop(["ticker", "window_start"]):
                np.testing.assert_allclose(mine[column].astype(float), want[column].astype(float),
                                           rtol=1e-12, equal_nan=True, err_msg=column)
    assert len(daily[daily["ticker"] == "AAA"]) == DAYS["AAA"] - 120
