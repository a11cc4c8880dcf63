"""The bar round-trip comparison catches every kind of difference."""

from datetime import UTC, date, datetime

import pandas as pd

from ticklake.verify import compare_bars

SOURCE = pd.DataFrame({
    "ticker": ["AAA", "AAA", "AAA"], "day": [date(2012, 1, 3), date(2012, 1, 4), date(2012, 1, 5)],
    "open": [1.0, 2.0, 3.0], "high": [1.5, 2.5, 3.5], "low": [0.5, 1.5, 2.5],
    "close": [1.2, 2.2, 3.2], "volume": [10, 20, 30],
})


def gold_from(source: pd.DataFrame) -> pd.DataFrame:
    out = source.drop(columns="day").copy()
    out["window_start"] = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in source["day"]]
    return out


def test_identical_bars_are_all_equal() -> None:
    """Gold built from the same bars matches on every day."""
    report = compare_bars(SOURCE, gold_from(SOURCE))
    assert report["all_equal"] and report["tickers"]["AAA"]["equal"] == 3


def test_changed_missing_and_extra_days_are_counted() -> None:
    """A close off by 0.01, a missing day and an extra day are each reported."""
    gold = gold_from(SOURCE)
    gold.loc[0, "close"] = 1.21
    gold = gold.drop(index=2)
    extra = gold_from(SOURCE.assign(day=[date(2012, 1, 9)] * 3)).head(1)
    report = compare_bars(SOURCE, pd.concat([gold, extra]))
    assert not report["all_equal"]
    assert {k: report["tickers"]["AAA"][k] for k in ("equal", "different", "missing", "extra")} == {
        "equal": 1, "different": 1, "missing": 1, "extra": 1}


def test_intraday_bars_are_matched_on_their_start_not_their_day() -> None:
    """Three hourly bars of one UTC day: matched to Gold's window_start hour by hour, so a
    volume off by one in one hour is one different bar (a day key would merge all three)."""
    starts = pd.to_datetime(["2017-01-02 00:00", "2017-01-02 01:00", "2017-01-02 02:00"],
                            utc=True)
    source = SOURCE.assign(start=starts, seconds=3600)
    gold = source.drop(columns=["day", "start", "seconds"]).assign(
        window_start=starts.astype("datetime64[us, UTC]"))
    assert compare_bars(source, gold)["tickers"]["AAA"]["equal"] == 3
    gold.loc[1, "volume"] = 21
    report = compare_bars(source, gold)["tickers"]["AAA"]
    assert (report["equal"], report["different"], report["missing"]) == (2, 1, 0)


def test_a_lake_without_gold_counts_every_bar_missing_and_an_unkept_length_is_named(
        tmp_path) -> None:
    """No Gold table yet: every source bar is missing (not equal). 15-minute source bars
    against the default intervals: the error says which setting adds them."""
    import pytest

    from ticklake.verify import compare_with_lake

    daily = SOURCE.assign(seconds=86_400)
    report = compare_with_lake(daily, tmp_path)
    assert not report["all_equal"] and report["tickers"]["AAA"]["missing"] == 3
    quarter_hours = SOURCE.assign(
        start=pd.to_datetime(["2017-01-02 00:00", "2017-01-02 00:15", "2017-01-02 00:30"],
                             utc=True), seconds=900)
    with pytest.raises(ValueError, match="add 15m to TICKLAKE_BAR_INTERVALS"):
        compare_with_lake(quarter_hours, tmp_path, ("1m", "5m", "1h", "1d"))
