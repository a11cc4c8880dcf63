"""The model registry: promotion rule, champion pointer, safe loading, data fingerprint."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.registry import Registry, data_fingerprint, promotion_decision
from config.errors import ModelError
from tests.model_registry import FORECAST_REL, RESIDUAL_QUANTILES, register_constant_model

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("skill", "champion_skill", "promote"),
    [
        (0.05, None, True),        # first version with positive skill
        (0.0, None, False),        # ties naive: not better than it
        (-0.02, None, False),
        (math.nan, None, False),
        (None, None, False),
        (0.03, 0.05, False),       # worse than the champion
        (0.05, 0.05, False),       # equal is not better
        (0.08, 0.05, True),
        (0.08, -1.0, True),
    ],
)
def test_promotion_rule(skill, champion_skill, promote) -> None:
    champion = None if champion_skill is None else {"version": "v0", "skill": champion_skill}
    decided, reason = promotion_decision(skill, champion)
    assert decided is promote and reason


def test_champion_moves_only_to_a_better_positive_skill_and_every_version_is_kept(
    lake: Path,
) -> None:
    registry = Registry(lake)
    outcomes = []
    for version, skill in (("v1", 0.05), ("v2", 0.03), ("v3", -0.01), ("v4", 0.08)):
        register_constant_model(lake, "AAA", version, skill)
        outcomes.append(registry.consider("AAA", version, NOW)[0])
        outcomes.append(registry.champion("AAA")["version"])
    assert outcomes == [True, "v1", False, "v1", False, "v1", True, "v4"]
    assert registry.versions("AAA") == ["v1", "v2", "v3", "v4"]
    v2 = registry.metadata("AAA", "v2")["promotion"]
    assert v2["promoted"] is False and "not better than champion v1" in v2["reason"]
    assert "does not beat the naive" in registry.metadata("AAA", "v3")["promotion"]["reason"]
    assert json.loads((lake / "models" / "AAA" / "champion.json").read_text())["skill"] == 0.08


def test_a_registered_model_loads_in_safe_mode_and_forecasts(lake: Path) -> None:
    register_constant_model(lake, "AAA", "v1", 0.1)
    loaded = Registry(lake).load("AAA", "v1")
    prices = np.array([10.0, 10.5, 11.0, 10.8, 11.2, 11.1, 12.0, 12.5])
    out = loaded.forecast(prices, np.full(8, 1000.0))
    assert out["naive_avg_price"] == 12.5
    assert out["predicted_avg_price"] == pytest.approx(12.5 * (1 + FORECAST_REL), rel=1e-6)
    assert out["lower_80"] == pytest.approx(12.5 * (1 + FORECAST_REL + RESIDUAL_QUANTILES[0]))
    assert out["upper_80"] == pytest.approx(12.5 * (1 + FORECAST_REL + RESIDUAL_QUANTILES[1]))
    with pytest.raises(ValueError, match="need 7 days"):
        loaded.forecast(prices[:3], np.full(3, 1000.0))


def test_a_model_needing_unsafe_deserialisation_is_refused(lake: Path) -> None:
    """A Lambda layer in model.keras could run arbitrary code: safe mode refuses to load it."""
    import keras

    folder = register_constant_model(lake, "AAA", "v1", 0.1)
    evil = keras.Sequential([keras.Input((7, 2)), keras.layers.Lambda(lambda x: x * 2),
                             keras.layers.LSTM(2), keras.layers.Dense(1)])
    evil.save(folder / "model.keras")
    with pytest.raises(ModelError, match="Lambda"):
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
