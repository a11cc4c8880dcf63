"""Dashboard figures: ingestion health and volume per day."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from visualization.data import ingestion_health, ingestion_per_day

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
