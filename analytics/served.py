"""What the prediction API serves without running a model: the forecasts ``ticklake train``
stored in ``gold/predictions``, the walk-forward figures of a registry version, and a memo for
what its answers are cached on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from config.tables import GOLD_PREDICTIONS
from storage.delta import read_table

FORECAST_COLUMNS = ("ticker", "model_version", "horizon", "model", "as_of", "target_date",
                    "predicted_avg_price", "lower_80", "upper_80", "naive_avg_price")


class Memo:
    """``compute(key)`` remembered for ``refresh_s`` seconds of ``clock`` per key (at most
    ``max_keys`` keys; all are forgotten when that is reached)."""

    def __init__(self, compute: Callable[[Any], Any], refresh_s: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.compute, self.refresh_s, self.clock, self.max_keys = (compute, refresh_s, clock,
                                                                   max_keys)
        self._values: dict[Any, tuple[float, Any]] = {}

    def __call__(self, key: Any) -> Any:
        now = self.clock()
        seen = self._values.get(key)
        if seen is not None and now - seen[0] < self.refresh_s:
            return seen[1]
        if len(self._values) >= self.max_keys:
            self._values.clear()
        value = self.compute(key)
        self._values[key] = (now, value)
        return value


def stored_forecast(lake_dir: Path, ticker: str, horizon: int, model_version: str,
                    as_of: date) -> dict[str, Any] | None:
    """The row of ``gold/predictions`` for (``ticker``, ``as_of``, ``horizon``,
    ``model_version``) as a dict of :data:`FORECAST_COLUMNS` (prices in the price unit, dates
    as ``datetime.date``), the newest by ``created_at`` if there are several; None when the
    table or the row does not exist."""
    where = ((pc.field("ticker") == ticker) & (pc.field("horizon") == horizon)
             & (pc.field("model_version") == model_version) & (pc.field("as_of") == as_of))
    rows = read_table(GOLD_PREDICTIONS, lake_dir, [*FORECAST_COLUMNS, "created_at"],
                      where=where).to_pylist()
    if not rows:
        return None
    newest = max(rows, key=lambda r: r["created_at"])
    return {k: newest[k] for k in FORECAST_COLUMNS}


def backtest_fields(metadata: dict[str, Any], horizon: int, model: str) -> dict[str, Any]:
    """The walk-forward figures of a registry version at ``horizon``: every model's (RMSE in the
    price unit, skill = 1 - RMSE / RMSE_naive, 80% interval coverage, Diebold-Mariano p-value
    against naive) under ``backtest``, and ``model``'s own as ``backtest_rmse``,
    ``backtest_skill``, ``backtest_coverage_80`` and ``dm_p_value``.

    Raises:
        KeyError: the version has no backtest for ``horizon`` or ``model``.
    """
    overall = metadata["horizons"][str(horizon)]["backtest"]["overall"]
    every = {m: {"rmse": o["rmse"], "skill": o["skill"], "coverage_80": o["coverage_80"],
                 "dm_p_value": o["dm"]["p_value"] if o.get("dm") else None}
             for m, o in overall.items()}
    own = every[model]
    return {"backtest_rmse": own["rmse"], "backtest_skill": own["skill"],
            "backtest_coverage_80": own["coverage_80"], "dm_p_value": own["dm_p_value"],
            "backtest": every}
