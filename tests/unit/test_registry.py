"""The model registry: the serving pointer, forecasts of known weights, safe loading, older
formats, data fingerprint."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.registry import Registry, data_fingerprint
from config.errors import ModelError
from tests.model_registry import (
    LINEAR_COEF,
    LINEAR_INTERCEPT,
    QUANTILE,
    SCALER,
    lstm_weights,
    reference_forecast,
    register_legacy_model,
    register_model,
    window_volatility_by_hand,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
PRICES = np.array([10.0, 10.5, 11.0, 10.8, 11.2, 11.1, 12.0, 12.5])
VOLUMES = np.array([900.0, 1200, 1500, 800, 1000, 2500, 1100, 1300])


def test_the_newest_version_serves_with_its_champion_per_horizon(lake: Path) -> None:
    registry = Registry(lake)
    register_model(lake, "AAA", "v1", {1: "lstm", 5: "naive"})
    assert registry.consider("AAA", "v1", NOW)[0]
    register_model(lake, "AAA", "v2", {1: "naive", 5: "linear"})
    promoted, reason = registry.consider("AAA", "v2", NOW)
    assert promoted and "replaces v1" in reason
    pointer = json.loads((lake / "models" / "AAA" / "champion.json").read_text())
    assert pointer["version"] == "v2"
    assert {h: e["model"] for h, e in pointer["horizons"].items()} == {"1": "naive",
                                                                        "5": "linear"}
    assert registry.versions("AAA") == ["v1", "v2"]  # every version is kept
    assert registry.metadata("AAA", "v2")["promotion"]["promoted"] is True


def test_an_older_format_never_serves_and_says_to_retrain(lake: Path) -> None:
    register_legacy_model(lake, "OLD", "v0")
    registry = Registry(lake)
    promoted, reason = registry.consider("OLD", "v0", NOW)
    assert not promoted and "format 1" in reason and registry.champion("OLD") is None
    with pytest.raises(ModelError, match="ticklake train"):
        registry.load("OLD", "v0")
    # a champion.json written by the older ticklake is not a serving pointer
    (lake / "models" / "OLD" / "champion.json").write_text(json.dumps(
        {"version": "v0", "skill": 0.01}))
    assert registry.champion("OLD") is None


def test_the_lstm_forecast_equals_the_equations_on_known_weights(lake: Path) -> None:
    """Non-zero weights: the served forecast is the NumPy forward pass of the LSTM on the
    scaled window; the interval is the conformal quantile x the window's volatility."""
    register_model(lake, "AAA", "v1")
    loaded = Registry(lake).load("AAA", "v1")
    out = loaded.forecast(PRICES, VOLUMES, horizon=1)
    window_p, window_v = PRICES[-7:], VOLUMES[-7:]
    rel = reference_forecast(window_p, window_v, lstm_weights())
    assert abs(rel) > 1e-4  # the weights make the window matter
    assert out["model"] == "lstm" and out["naive_avg_price"] == 12.5
    assert out["predicted_avg_price"] == pytest.approx(12.5 * (1 + rel), rel=1e-5)
    half = QUANTILE["lstm"] * window_volatility_by_hand(window_p)
    assert out["lower_80"] == pytest.approx(12.5 * (1 + rel - half), rel=1e-5)
    assert out["upper_80"] == pytest.approx(12.5 * (1 + rel + half), rel=1e-5)
    # the same window in another order is another forecast
    permuted = loaded.forecast(PRICES[[0, 1, 4, 2, 6, 3, 5, 7]], VOLUMES, horizon=1)
    assert permuted["predicted_avg_price"] != pytest.approx(out["predicted_avg_price"],
                                                            rel=1e-4)
    with pytest.raises(ValueError, match="need 7 days"):
        loaded.forecast(PRICES[:3], VOLUMES[:3])
    with pytest.raises(ValueError, match="not 2"):
        loaded.forecast(PRICES, VOLUMES, horizon=2)


def test_a_linear_champion_serves_its_coefficients_with_the_wider_horizon(lake: Path) -> None:
    """h=5's champion is the linear baseline: intercept + coefficients x the scaled, flattened
    window; the half-width grows with sqrt(5)."""
    register_model(lake, "AAA", "v1")
    out = Registry(lake).load("AAA", "v1").forecast(PRICES, VOLUMES, horizon=5)
    window_p, window_v = PRICES[-7:], VOLUMES[-7:]
    design = np.stack([(window_p / window_p[-1] - 1) / SCALER.target_std,
                       (np.log1p(window_v) - SCALER.log_volume_mean) / SCALER.log_volume_std],
                      axis=-1).reshape(-1)
    rel = LINEAR_INTERCEPT + float(design @ np.array(LINEAR_COEF))
    assert out["model"] == "linear"
    assert out["predicted_avg_price"] == pytest.approx(12.5 * (1 + rel), rel=1e-5)
    half = QUANTILE["linear"] * window_volatility_by_hand(window_p) * math.sqrt(5)
    assert out["upper_80"] - out["lower_80"] == pytest.approx(2 * 12.5 * half, rel=1e-5)


def test_champion_loading_skips_the_lstms_that_serve_no_horizon(lake: Path) -> None:
    """``lstm="champion"``: h=1 (LSTM champion) keeps its LSTM, h=5 (linear) has none; the
    champions' forecasts equal a full load's, and asking h=5 for the LSTM is an error."""
    register_model(lake, "AAA", "v1")
    full = Registry(lake).load("AAA", "v1")
    light = Registry(lake).load("AAA", "v1", lstm="champion")
    assert light.horizons[1].lstm is not None and light.horizons[5].lstm is None
    for h in (1, 5):
        assert light.forecast(PRICES, VOLUMES, h) == full.forecast(PRICES, VOLUMES, h)
    assert light.forecast(PRICES, VOLUMES, 5, model="sma") == full.forecast(
        PRICES, VOLUMES, 5, model="sma")
    with pytest.raises(ValueError, match="without the LSTM of horizon 5"):
        light.forecast(PRICES, VOLUMES, 5, model="lstm")


def test_a_model_needing_unsafe_deserialisation_is_refused(lake: Path) -> None:
    """A Lambda layer in model.keras could run arbitrary code: safe mode refuses to load it."""
    import keras

    folder = register_model(lake, "AAA", "v1")
    evil = keras.Sequential([keras.Input((7, 2)), keras.layers.Lambda(lambda x: x * 2),
                             keras.layers.LSTM(2), keras.layers.Dense(1)])
    evil.save(folder / "h1" / "model.keras")
    with pytest.raises(ModelError, match="Lambda"):
        Registry(lake).load("AAA", "v1")


def test_non_finite_linear_coefficients_are_refused(lake: Path) -> None:
    folder = register_model(lake, "AAA", "v1")
    (folder / "h5" / "linear.json").write_text('{"coef": [NaN], "intercept": 0.0}')
    with pytest.raises(ModelError, match="non-finite"):
        Registry(lake).load("AAA", "v1")


def test_data_fingerprint_ignores_row_order_and_sees_a_changed_value() -> None:
    frame = pd.DataFrame({"trading_date": pd.date_range("2012-01-02", periods=5).date,
                          "avg_price": [1.0, 2, 3, 4, 5], "total_volume": [10, 20, 30, 40, 50]})
    same = data_fingerprint(frame.iloc[::-1])
    assert data_fingerprint(frame) == same
    changed = frame.copy()
    changed.loc[2, "avg_price"] = 3.0000001
    assert data_fingerprint(changed) != same
    assert data_fingerprint(frame.iloc[:4]) != same
