"""Training on real daily metrics: walk-forward metrics, registry files, promotion, forecasts,
parallel workers, reproducibility and retraining only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from producer.sources.replay import load_bokeh_bars
from storage.delta import read_table
from storage.sink import DeltaSink

pytestmark = [pytest.mark.integration]
REPRODUCIBLE_RTOL = 1e-6
"""Documented tolerance (README): a retrain on the same data gives the same metrics."""


def write_daily_metrics(lake: Path, tickers: list[str], days: int) -> dict[str, np.ndarray]:
    """Real daily metrics as the pipeline computes them (mean of the 4 replay ticks)."""
    out = {}
    for ticker in tickers:
        bars = load_bokeh_bars([ticker]).tail(days)
        avg = ((bars.open + bars.high + bars.low + bars.close) / 4).to_numpy()
        table = pa.table({
            "trading_date": pa.array(list(bars.day), pa.date32()),
            "ticker": [ticker] * days, "avg_price": avg,
            "total_volume": pa.array(bars.volume.to_numpy(), pa.int64()),
            "trades": pa.array([4] * days, pa.int64()),
            "updated_at": pa.nulls(days, GOLD_DAILY_METRICS.schema.field("updated_at").type),
            "price_sum": avg * 4,
        })
        DeltaSink(GOLD_DAILY_METRICS, lake, "test").upsert(table, None)
        out[ticker] = avg
    return out


def test_train_backtests_registers_promotes_and_forecasts(lake: Path) -> None:
    """IBM and MSFT, 400 real days each, trained in 2 worker processes: each version holds the
    model, JSON scaler, metadata (Gold version, code commit, walk-forward metrics of every
    model), backtest plot and numbers; naive RMSE equals the last-value RMSE recomputed from
    the series; a promoted champion's forecast lands in Gold with its interval."""
    import keras

    from analytics.registry import Registry
    from analytics.train import train_all

    avg = write_daily_metrics(lake, ["IBM", "MSFT"], 400)
    settings = Settings(lake_dir=lake, epochs=2, train_workers=2, backtest_folds=3)
    results = train_all(settings, show_progress=False)
    assert [r.ticker for r in results] == ["IBM", "MSFT"]
    registry = Registry(lake)
    gold_version = DeltaTable(str(GOLD_DAILY_METRICS.path(lake))).version()
    for result in results:
        assert result.skipped is None and result.version
        folder = lake / "models" / result.ticker / result.version
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["data"]["gold_table"] == "gold.daily_metrics"
        assert meta["data"]["gold_version"] == gold_version and meta["data"]["rows"] == 400
        assert meta["code"]["commit"] is None or len(meta["code"]["commit"]) == 40
        assert meta["window_days"] == 7 and meta["features"] == ["avg_price", "total_volume"]
        # 393 windows, 20% = 79 held out in 3 folds of 27, 26, 26 consecutive days
        folds = meta["backtest"]["folds"]
        assert [f["test_windows"] for f in folds] == [27, 26, 26]
        backtest = pd.read_csv(folder / "backtest.csv")
        assert len(backtest) == 79 and list(backtest["fold"].unique()) == [0, 1, 2]
        actual, last = avg[result.ticker][-79:], avg[result.ticker][-80:-1]
        np.testing.assert_allclose(backtest["actual"], actual)
        overall = meta["backtest"]["overall"]
        assert overall["naive"]["rmse"] == pytest.approx(np.sqrt(np.mean((actual - last) ** 2)))
        assert overall["lstm"]["skill"] == pytest.approx(
            1 - overall["lstm"]["rmse"] / overall["naive"]["rmse"])
        assert set(overall) == {"lstm", "naive", "sma", "linear", "coverage_80"}
        inside = ((backtest["lower"] <= backtest["actual"])
                  & (backtest["actual"] <= backtest["upper"])).mean()
        assert overall["coverage_80"] == pytest.approx(inside)
        assert (folder / "backtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert keras.saving.load_model(folder / "model.keras", safe_mode=True).input_shape == \
            (None, 7, 2)
        assert meta["promotion"]["promoted"] is result.promoted
        assert result.promoted is (result.skill > 0)  # no earlier champion
    predictions = read_table(GOLD_PREDICTIONS, lake).to_pylist()
    assert sorted(p["ticker"] for p in predictions) == sorted(registry.champions())
    for p in predictions:
        assert p["naive_avg_price"] == pytest.approx(avg[p["ticker"]][-1])
        assert p["target_date"] > p["as_of"] and p["lower_80"] <= p["upper_80"]
        assert abs(p["predicted_avg_price"] / p["naive_avg_price"] - 1) < 0.2

    # the same data again, one process this time: the same metrics; no better skill, so no
    # promotion
    again = train_all(settings.with_overrides(train_workers=1), show_progress=False)
    for first, second in zip(results, again, strict=True):
        assert second.version != first.version
        for model in ("lstm", "naive", "sma", "linear"):
            assert second.overall[model]["rmse"] == pytest.approx(
                first.overall[model]["rmse"], rel=REPRODUCIBLE_RTOL)
        assert second.promoted is False
    # nothing changed in Gold: --changed-only trains nothing
    skipped = train_all(settings, changed_only=True, show_progress=False)
    assert all(r.skipped and r.skipped.startswith("unchanged since") for r in skipped)
    assert all(len(registry.versions(t)) == 2 for t in ("IBM", "MSFT"))


def test_too_short_history_is_skipped_with_the_reason(lake: Path) -> None:
    """20 days cannot make 4 walk-forward folds of 7-day windows: skipped, no model written."""
    from analytics.train import train_all

    write_daily_metrics(lake, ["IBM"], 20)
    [result] = train_all(Settings(lake_dir=lake, epochs=1), show_progress=False)
    assert result.version is None and "would fit on" in result.skipped
    assert not (lake / "models").exists()
