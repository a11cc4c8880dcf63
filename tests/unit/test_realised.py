"""Realised forecast error: the actual is the avg_price on the forecast's target date."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics.realised import realised_errors


def test_forecasts_meet_their_target_day_and_unrealised_ones_wait() -> None:
    daily = pd.DataFrame({
        "ticker": ["AAA", "AAA", "AAA", "AAA", "BBB"],
        "trading_date": [date(2012, 1, 5), date(2012, 1, 6), date(2012, 1, 9), date(2012, 1, 13),
                         date(2012, 1, 9)],
        "avg_price": [10.0, 10.5, 11.0, 11.4, 50.0],
    })
    preds = pd.DataFrame({
        "ticker": ["AAA", "AAA", "AAA", "BBB"],
        "as_of": [date(2012, 1, 6), date(2012, 1, 6), date(2012, 1, 9), date(2012, 1, 9)],
        "target_date": [date(2012, 1, 9), date(2012, 1, 13), date(2012, 1, 10),
                        date(2012, 1, 10)],
        "horizon": [1, 5, 1, 1],
        "model": ["lstm", "naive", "lstm", "linear"],
        "model_version": ["v1"] * 4,
        "predicted_avg_price": [10.8, 10.5, 11.5, 51.0],
        "lower_80": [10.6, 10.0, 11.0, 49.0], "upper_80": [10.9, 11.5, 12.0, 52.0],
        "naive_avg_price": [10.5, 10.5, 11.0, 50.0],
    })
    errors = realised_errors(preds, daily)
    # AAA's Friday forecasts have actuals: Monday's 11.0 (h=1) and the next Friday's 11.4
    # (h=5); the Monday forecasts' Tuesday is not in Gold yet
    assert list(zip(errors["horizon"], errors["actual_date"], errors["actual_avg_price"],
                    strict=True)) == [(1, date(2012, 1, 9), 11.0), (5, date(2012, 1, 13), 11.4)]
    h1, h5 = errors.iloc[0], errors.iloc[1]
    assert h1["error"] == pytest.approx(-0.2) and h1["naive_error"] == pytest.approx(-0.5)
    assert not h1["inside_80"]  # 11.0 is above [10.6, 10.9]
    assert h5["model"] == "naive" and h5["inside_80"]
    assert realised_errors(preds.iloc[:0], daily).empty


def test_rows_of_an_older_lake_count_as_next_day_lstm_forecasts() -> None:
    daily = pd.DataFrame({"ticker": ["AAA"], "trading_date": [date(2012, 1, 9)],
                          "avg_price": [11.0]})
    preds = pd.DataFrame({"ticker": ["AAA"], "as_of": [date(2012, 1, 6)],
                          "target_date": [date(2012, 1, 9)], "horizon": [None], "model": [None],
                          "model_version": ["v0"], "predicted_avg_price": [10.8],
                          "lower_80": [10.0], "upper_80": [11.5], "naive_avg_price": [10.5]})
    [row] = realised_errors(preds, daily).to_dict("records")
    assert row["horizon"] == 1 and row["model"] == "lstm" and row["inside_80"]
