"""Dashboard figures: ingestion health and volume per day."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from pipeline.monitoring import lag_table, processed_offsets
from visualization.charts import market_figure
from visualization.data import ingestion_health, latest_forecasts, quarantine_by_day, read_bars

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age_s", "state"), [(0, "healthy"), (60, "healthy"), (61, "late"), (600, "late"),
                         (601, "stalled")],
)
def test_health_by_ingest_age(age_s: float, state: str) -> None:
    """healthy <= 60 s, late <= 600 s, stalled beyond (the default thresholds)."""
    assert ingestion_health(NOW - timedelta(seconds=age_s), NOW, 60, 600) == state


def test_no_data_and_naive_times() -> None:
    """Nothing ingested is 'no data'; a naive time is an error."""
    assert ingestion_health(None, NOW, 60, 600) == "no data"
    with pytest.raises(ValueError, match="timezone-aware"):
        ingestion_health(datetime(2026, 11, 22), NOW, 60, 600)  # noqa: DTZ001 (the point)


def test_lag_is_end_minus_processed_per_partition() -> None:
    """Partition 1 is caught up, 0 lags by 5; a partition Bronze never read lags by its whole
    end; without the broker the end and lag are unknown."""
    lag = lag_table({0: 12, 1: 7, 2: 4}, {0: 7, 1: 7})
    assert list(lag["partition"]) == [0, 1, 2] and list(lag["lag"]) == [5, 0, 4]
    assert list(lag["processed_offset"].isna()) == [False, False, True]
    assert list(lag_table({0: 3}, {})["lag"]) == [3]  # Bronze has read nothing yet
    unknown = lag_table(None, {0: 7})
    assert unknown["end_offset"].isna().all() and unknown["lag"].isna().all()


def test_reads_push_the_ticker_and_range_into_the_scan(lake) -> None:
    """read_bars returns only the ticker's bars in [start, end), in time order;
    latest_forecasts keeps the newest forecast of each horizon."""
    from tests import small_lake

    small_lake.build(lake)
    bars = read_bars(lake, "1d", "AAA", pd.Timestamp("2012-01-05", tz="UTC"),
                     pd.Timestamp("2012-01-08", tz="UTC"))
    assert list(bars["close"]) == [13.5, 14.5, 15.5]
    assert read_bars(lake, "1d", "ZZZ").empty
    assert processed_offsets(lake, "t") == {0: 7, 1: 0, 2: 3, 3: 12}
    assert processed_offsets(lake, "other") == {}
    forecasts = latest_forecasts(lake, "AAA")
    assert list(forecasts["horizon"]) == [1, 5]
    by_day = quarantine_by_day(lake)
    assert by_day.to_dict("records") == [
        {"day": date(2026, 11, 20), "reason": "duplicate_tick_id", "records": 1},
        {"day": date(2026, 11, 20), "reason": "not_json", "records": 1}]


def test_market_figure_refuses_unknown_choices() -> None:
    bars = pd.DataFrame({"window_start": [datetime(2012, 1, 2, tzinfo=UTC)], "open": [1.0],
                         "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1]})
    with pytest.raises(ValueError, match="overlays: "):
        market_figure(bars, overlays=["SMA 999"])
    with pytest.raises(ValueError, match="panel"):
        market_figure(bars, panel="ADX")
    assert [t.name for t in market_figure(bars, panel="MACD").data] == ["OHLC", "volume"]
    assert market_figure(bars, currency="HKD").layout.yaxis.title.text == "price (HKD)"
