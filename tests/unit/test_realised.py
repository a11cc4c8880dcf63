"""Realised forecast error: the actual is the first trading day after ``as_of``."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics.realised import realised_errors


def test_forecasts_meet_the_next_trading_day_and_unrealised_ones_wait() -> None:
    daily = pd.DataFrame({
        "ticker": ["AAA", "AAA", "AAA", "BBB"],
        "trading_date": [date(2012, 1, 5), date(2012, 1, 6), date(2012, 1, 9), date(2012, 1, 9)],
        "avg_price": [10.0, 10.5, 11.0, 50.0],
    })
    preds = pd.DataFrame({
        "ticker": ["AAA", "AAA", "BBB"],
        "as_of": [date(2012, 1, 6), date(2012, 1, 9), date(2012, 1, 9)],  # Friday, Monday
        "model_version": ["v1", "v1", "v1"],
        "predicted_avg_price": [10.8, 11.5, 51.0],
        "lower_80": [10.6, 11.0, 49.0], "upper_80": [10.9, 12.0, 52.0],
        "naive_avg_price": [10.5, 11.0, 50.0],
    })
    errors = realised_errors(preds, daily)
    # only AAA's Friday forecast has an actual yet: Monday's 11.0 (over the weekend)
    assert len(errors) == 1
    row = errors.iloc[0]
    assert row["actual_date"] == date(2012, 1, 9) and row["actual_avg_price"] == 11.0
    assert row["error"] == pytest.approx(-0.2) and row["naive_error"] == pytest.approx(-0.5)
    assert not row["inside_80"]  # 11.0 is above [10.6, 10.9]
    assert realised_errors(preds.iloc[:0], daily).empty
