"""Dashboard figures: ingestion health and volume per day."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from visualization.data import ingestion_health, ingestion_per_day, price_chart_frame

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


def test_records_per_utc_day() -> None:
    """Counts group by the UTC date of ingest time."""
    times = pd.Series(pd.to_datetime(["2026-11-21T23:59:59Z", "2026-11-22T00:00:00Z",
                                      "2026-11-22T13:00:00Z"], utc=True))
    frame = ingestion_per_day(times)
    assert frame["records"].tolist() == [1, 2]
    assert [str(d) for d in frame["day"]] == ["2026-11-21", "2026-11-22"]


def test_price_chart_ends_in_each_horizons_forecast_its_interval_and_naive() -> None:
    bars = pd.DataFrame({"ticker": ["AAA"] * 3, "close": [10.0, 11.0, 12.0],
                         "window_start": [datetime(2012, 1, d, tzinfo=UTC) for d in (4, 5, 6)]})
    preds = pd.DataFrame([  # newest first, as visualization.data.predictions returns them
        {"ticker": "AAA", "target_date": date(2012, 1, 9), "horizon": 1, "model": "lstm",
         "predicted_avg_price": 12.3, "lower_80": 11.9, "upper_80": 12.8,
         "naive_avg_price": 12.0},
        {"ticker": "AAA", "target_date": date(2012, 1, 13), "horizon": 5, "model": "naive",
         "predicted_avg_price": 12.0, "lower_80": 11.0, "upper_80": 13.0,
         "naive_avg_price": 12.0},
        {"ticker": "AAA", "target_date": date(2012, 1, 6), "horizon": 1, "model": "lstm",
         "predicted_avg_price": 99.0, "lower_80": 98.0, "upper_80": 100.0,
         "naive_avg_price": 99.0},  # an older forecast: not drawn
    ])
    frame = price_chart_frame(bars, preds, "AAA")
    ends = frame[frame["date"] == pd.Timestamp("2012-01-09")].set_index("series")["price"]
    assert ends.to_dict() == {"h=1 lstm": 12.3, "h=1 80% lower": 11.9,
                              "h=1 80% upper": 12.8, "h=1 naive": 12.0}
    week = frame[frame["date"] == pd.Timestamp("2012-01-13")].set_index("series")["price"]
    assert week.to_dict() == {"h=5 naive": 12.0, "h=5 80% lower": 11.0, "h=5 80% upper": 13.0}
    assert 99.0 not in set(frame["price"])
    assert list(frame[frame["series"] == "close"]["price"]) == [10.0, 11.0, 12.0]
