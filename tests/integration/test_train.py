"""Training on real daily metrics: registry files, metrics against the naive baseline, forecast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from pipeline.connectors.delta_sink import DeltaSink
from producer.sources.replay import load_bokeh_bars
from ticklake.status import read_table

pytestmark = [pytest.mark.integration]


def write_daily_metrics(lake: Path, days: int) -> np.ndarray:
    """Real IBM daily metrics as the pipeline computes them: mean of the 4 replay ticks."""
    bars = load_bokeh_bars(["IBM"]).tail(days)
    avg = ((bars.open + bars.high + bars.low + bars.close) / 4).to_numpy()
    table = pa.table({
        "trading_date": pa.array(list(bars.day), pa.date32()),
        "ticker": ["IBM"] * days, "avg_price": avg,
        "total_volume": pa.array(bars.volume.to_numpy(), pa.int64()),
        "trades": pa.array([4] * days, pa.int64()),
        "updated_at": pa.nulls(days, GOLD_DAILY_METRICS.schema.field("updated_at").type),
    })
    DeltaSink(GOLD_DAILY_METRICS, lake, "test").upsert(table, None)
    return avg


def test_train_registers_a_model_with_honest_metrics(lake: Path) -> None:
    """One ticker: model.keras, scaler.json, metadata.json with the Gold version; the naive
    RMSE equals last-value RMSE on the hold-out; a next-day forecast lands in Gold."""
    import keras

    from analytics.train import train_all

    avg = write_daily_metrics(lake, 300)
    settings = Settings(lake_dir=lake, epochs=2)
    [result] = train_all(settings)
    assert result.ticker == "IBM" and result.skipped is None
    folder = lake / "models" / "IBM" / result.version
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["gold_table"] == "gold.daily_metrics" and meta["gold_version"] == 1
    assert meta["window_days"] == 7 and meta["features"] == ["avg_price", "total_volume"]
    # 293 windows, 20 % hold-out = 59 test windows: the last 59 next-day prices.
    n_test = meta["test_windows"]
    assert n_test == 59 and meta["train_windows"] == 234
    actual, last = avg[-n_test:], avg[-n_test - 1:-1]
    assert meta["metrics"]["naive"]["rmse"] == pytest.approx(np.sqrt(np.mean((actual - last) ** 2)))
    assert meta["metrics"]["naive"]["directional_accuracy"] is None
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    assert model.input_shape == (None, 7, 2)
    assert set(json.loads((folder / "scaler.json").read_text())) == {
        "log_volume_mean", "log_volume_std", "target_std"}
    [prediction] = read_table(GOLD_PREDICTIONS, lake).to_pylist()
    assert prediction["model_version"] == result.version
    assert prediction["naive_avg_price"] == pytest.approx(avg[-1])
    assert prediction["target_date"] > prediction["as_of"]
    assert abs(prediction["predicted_avg_price"] / avg[-1] - 1) < 0.2


def test_too_short_history_is_skipped_with_the_reason(lake: Path) -> None:
    """20 days cannot make 30 training windows of 7 days: skipped, no model written."""
    from analytics.train import train_all

    write_daily_metrics(lake, 20)
    [result] = train_all(Settings(lake_dir=lake, epochs=1))
    assert result.version is None and "too few" in result.skipped
    assert not (lake / "models").exists()
