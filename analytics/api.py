"""The prediction API (FastAPI): champion forecasts over HTTP.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``GET /health``: model count, champion version per ticker, ``gold/daily_metrics`` version.
- ``GET /predict/{ticker}``: the next-trading-day forecast of the ticker's champion from the
  last ``window_days`` days of current Gold, with its 80% interval and the naive forecast.
- ``POST /predict``: the same from an explicit window of daily (avg_price, total_volume).

Every bad input is a 4xx with a ``detail`` saying what is wrong: 404 for a ticker without a
champion (unknown, or no version beat the naive forecast) or without enough days in Gold, 422
for a malformed ticker, a window of the wrong length, or a price/volume that is not finite,
not > 0 (price) or < 0 (volume). No input produces a 5xx (checked by a property-based test).

Run it with ``ticklake serve`` (127.0.0.1:8000 by default).
"""

from __future__ import annotations

import math
import threading
from datetime import date
from typing import Annotated, Any

import pyarrow.compute as pc
from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from analytics.registry import LoadedModel, Registry
from config.calendar import next_trading_day
from config.errors import ModelError
from config.settings import TICKER_PATTERN, Settings
from config.tables import GOLD_DAILY_METRICS
from storage.delta import open_table, read_table

TickerPath = Annotated[str, Path(pattern=TICKER_PATTERN.pattern,
                                 description="Ticker symbol, e.g. AAPL.")]


class WindowDay(BaseModel):
    """One day of a forecast window."""

    model_config = ConfigDict(extra="forbid")
    avg_price: float = Field(gt=0, allow_inf_nan=False,
                             description="The day's average traded price (> 0, price unit).")
    total_volume: float = Field(ge=0, allow_inf_nan=False,
                                description="Shares traded that day (>= 0).")


class PredictRequest(BaseModel):
    """An explicit window: the last ``window_days`` days (7 by default), oldest first."""

    model_config = ConfigDict(extra="forbid")
    ticker: str = Field(pattern=TICKER_PATTERN.pattern, description="Ticker symbol.")
    window: list[WindowDay] = Field(max_length=366, description="Days, oldest first.")


class Forecast(BaseModel):
    """A next-day avg_price forecast of a champion model, next to the naive forecast."""

    ticker: str
    model_version: str
    as_of: date | None = Field(None, description="Last trading date of the window (Gold).")
    target_date: date | None = Field(None, description="Next NYSE session after as_of.")
    predicted_avg_price: float
    lower_80: float = Field(description="Lower bound of the 80% prediction interval.")
    upper_80: float = Field(description="Upper bound of the 80% prediction interval.")
    naive_avg_price: float = Field(description="Naive forecast: the window's last avg_price.")
    backtest_skill: float | None = Field(
        None, description="Walk-forward skill vs naive: 1 - RMSE_lstm / RMSE_naive.")
    backtest_coverage_80: float | None = Field(
        None, description="Share of backtest days inside the 80% interval.")


class Health(BaseModel):
    status: str
    model_count: int = Field(description="Registered model versions, all tickers.")
    champions: dict[str, str] = Field(description="Champion version per ticker.")
    gold_version: int | None = Field(description="Delta version of gold/daily_metrics.")


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app over ``settings.lake_dir`` (registry and Gold are read per request, so a
    new champion or new Gold rows are served without a restart)."""
    app = FastAPI(
        title="ticklake prediction API",
        version="1",
        description="Next-day avg_price forecasts of each ticker's champion LSTM, with the 80% "
        "prediction interval and the naive forecast. Champions are promoted only when their "
        "walk-forward skill vs naive is > 0.",
    )
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and an echoed inf or NaN is not valid JSON
        # (a 500 instead of the 422): non-finite numbers are echoed as strings.
        return JSONResponse(status_code=422,
                            content={"detail": _json_safe(jsonable_encoder(exc.errors()))})

    registry = Registry(settings.lake_dir)
    cache: dict[tuple[str, str], LoadedModel] = {}
    lock = threading.Lock()

    def champion_model(ticker: str) -> LoadedModel:
        champion = registry.champion(ticker)
        if champion is None:
            known = ", ".join(sorted(registry.champions())) or "none yet"
            why = ("no version beat the naive forecast" if registry.versions(ticker)
                   else "no model trained for it")
            raise HTTPException(404, f"no champion for {ticker!r} ({why}); tickers with a "
                                     f"champion: {known}")
        key = (ticker, champion["version"])
        with lock:
            if key not in cache:
                try:
                    cache[key] = registry.load(*key)
                except ModelError as err:  # the registry, not the request, is bad
                    raise HTTPException(503, f"champion {key[0]}/{key[1]} cannot be loaded: "
                                             f"{err}") from None
            return cache[key]

    def forecast(model: LoadedModel, price: Any, volume: Any) -> dict[str, Any]:
        try:
            out = model.forecast(price, volume)
        except (ValueError, ArithmeticError) as err:
            raise HTTPException(422, f"cannot forecast from this window: {err}") from None
        if not all(math.isfinite(v) for v in out.values()):
            raise HTTPException(422, "the forecast is not finite for this window (prices too "
                                     "far apart)")
        backtest = model.metadata.get("backtest", {}).get("overall", {})
        return {**out, "ticker": model.ticker, "model_version": model.version,
                "backtest_skill": backtest.get("lstm", {}).get("skill"),
                "backtest_coverage_80": backtest.get("coverage_80")}

    @app.get("/health", response_model=Health, summary="Models, champions, Gold version")
    def health() -> Health:
        delta = open_table(GOLD_DAILY_METRICS, settings.lake_dir)
        return Health(
            status="ok",
            model_count=sum(len(registry.versions(t)) for t in registry.tickers()),
            champions={t: c["version"] for t, c in registry.champions().items()},
            gold_version=delta.version() if delta is not None else None,
        )

    @app.get("/predict/{ticker}", response_model=Forecast,
             summary="Champion forecast on current Gold",
             responses={404: {"description": "No champion, or too few days in Gold"}})
    def predict_from_gold(ticker: TickerPath) -> Forecast:
        model = champion_model(ticker)
        series = read_table(GOLD_DAILY_METRICS, settings.lake_dir,
                            ["trading_date", "avg_price", "total_volume"],
                            where=pc.field("ticker") == ticker).to_pandas()
        series = series.sort_values("trading_date")
        if len(series) < model.window_days:
            raise HTTPException(404, f"{ticker} has {len(series)} days in "
                                     f"{GOLD_DAILY_METRICS.name}; the model needs "
                                     f"{model.window_days}")
        as_of = series["trading_date"].iloc[-1]
        out = forecast(model, series["avg_price"].to_numpy(), series["total_volume"].to_numpy())
        return Forecast(**out, as_of=as_of, target_date=next_trading_day(as_of))

    @app.post("/predict", response_model=Forecast, summary="Champion forecast on a given window",
              responses={404: {"description": "No champion for the ticker"},
                         422: {"description": "Malformed ticker or window"}})
    def predict_from_window(request: PredictRequest) -> Forecast:
        model = champion_model(request.ticker)
        if len(request.window) != model.window_days:
            raise HTTPException(422, f"window has {len(request.window)} days; the champion of "
                                     f"{request.ticker} needs exactly {model.window_days}")
        price = [d.avg_price for d in request.window]
        volume = [d.total_volume for d in request.window]
        return Forecast(**forecast(model, price, volume))

    return app


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string ("inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
