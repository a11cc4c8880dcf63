"""The prediction API (FastAPI): champion forecasts over HTTP.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``GET /health``: model count, serving version per ticker, ``gold/daily_metrics`` version.
- ``GET /predict/{ticker}?horizon=H``: the forecast ``H`` trading days ahead (default 1) of the
  horizon's champion model from the last ``window_days`` days of current Gold (the one
  ``ticklake train`` stored in ``gold/predictions`` when it is of Gold's last day), with its
  conformal 80% interval, the naive forecast, and the champion's walk-forward RMSE, skill,
  interval coverage and Diebold-Mariano p-value against naive. Answers are kept in memory per
  serving version and Delta versions of ``gold/daily_metrics`` and ``gold/predictions``,
  which are looked up at most every ``TICKLAKE_API_REFRESH_S`` seconds.
- ``POST /predict``: the same from an explicit window of daily (avg_price, total_volume).
- ``GET /metrics``: Prometheus text format: the API's request counts and latencies
  (``ticklake_api_requests_total{method,route,status}``,
  ``ticklake_api_request_duration_seconds{method,route}``) and the pipeline's health read at
  scrape time (:mod:`pipeline.monitoring`: jobs' rows/s, Kafka lag, table facts).

Security: with ``TICKLAKE_API_KEY`` set, every endpoint but the OpenAPI docs requires it in the
``X-API-Key`` header (401 without it or with another key, compared in constant time); the app
refuses to start bound to anything but loopback without a key (:func:`check_exposure`). A
request body over ``TICKLAKE_API_MAX_BODY_BYTES`` (64 KiB) gets 413 before it is read: by its
``Content-Length``, or, for a chunked body, as soon as the bytes received pass the limit
(:class:`BodySizeLimit`), so a huge or slow upload cannot hold the event loop.

Every bad input is a 4xx with a ``detail`` saying what is wrong: 404 for a ticker without a
serving version (never trained) or without enough days in Gold, 422 for a malformed ticker, a
horizon the version does not serve, a window of the wrong length, or a price/volume that is not
finite, not > 0 (price) or < 0 (volume). No input produces a 5xx (checked by a property-based
test).

Run it with ``ticklake serve`` (127.0.0.1:8000 by default).
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

import pyarrow.compute as pc
from fastapi import FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from analytics.registry import LoadedModel, Registry
from analytics.served import Memo, backtest_fields, stored_forecast
from config.calendar import trading_day_after
from config.errors import ConfigError, ModelError
from config.settings import TICKER_PATTERN, Settings
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from pipeline.monitoring import LakeCollector
from storage.delta import open_table, read_table, table_version

TickerPath = Annotated[str, Path(pattern=TICKER_PATTERN.pattern,
                                 description="Ticker symbol, e.g. AAPL.")]
HorizonQuery = Annotated[int, Query(ge=1, le=60, description="Trading days ahead (a horizon "
                                    "the ticker's version serves, e.g. 1 or 5).")]


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
    horizon: int = Field(1, ge=1, le=60, description="Trading days ahead.")


class ModelBacktest(BaseModel):
    """One model's walk-forward figures at the forecast's horizon (pooled test folds)."""

    rmse: float = Field(description="RMSE, price unit.")
    skill: float | None = Field(description="1 - RMSE / RMSE_naive.")
    coverage_80: float | None = Field(description="Share of test days inside its 80% interval.")
    dm_p_value: float | None = Field(
        description="Two-sided Diebold-Mariano p-value vs naive; null for naive.")


class Forecast(BaseModel):
    """An avg_price forecast of a horizon's champion model, next to the naive forecast."""

    ticker: str
    model_version: str
    horizon: int = Field(description="Trading days ahead.")
    model: str = Field(description="The champion that made it: lstm, naive, sma or linear.")
    as_of: date | None = Field(None, description="Last trading date of the window (Gold).")
    target_date: date | None = Field(
        None, description="The horizon-th session after as_of in the ticker's market "
        "calendar (NYSE for US stocks, weekdays for FX, every day for crypto).")
    predicted_avg_price: float
    lower_80: float = Field(description="Lower bound of the conformal 80% interval.")
    upper_80: float = Field(description="Upper bound of the conformal 80% interval.")
    naive_avg_price: float = Field(description="Naive forecast: the window's last avg_price.")
    backtest_rmse: float | None = Field(
        None, description="The model's walk-forward RMSE (price unit), pooled test folds.")
    backtest_skill: float | None = Field(
        None, description="Walk-forward skill vs naive: 1 - RMSE_model / RMSE_naive.")
    backtest_coverage_80: float | None = Field(
        None, description="Share of walk-forward test days inside the model's 80% interval.")
    dm_p_value: float | None = Field(
        None, description="Two-sided Diebold-Mariano p-value (HLN-corrected) of the model vs "
        "naive on the walk-forward test days; null for naive itself.")
    backtest: dict[str, ModelBacktest] = Field(
        default_factory=dict, description="Every model's walk-forward figures at this horizon "
        "(lstm, naive, sma, linear), as ticklake train printed them.")


class Health(BaseModel):
    status: str
    model_count: int = Field(description="Registered model versions, all tickers.")
    champions: dict[str, str] = Field(description="Serving version per ticker.")
    gold_version: int | None = Field(description="Delta version of gold/daily_metrics.")


ANSWER_CACHE_SIZE = 10_000
"""Answers of ``GET /predict/{ticker}`` kept at most (the cache is emptied when it is full).
Their keys hold the serving version and the Delta versions they were made from, so an answer
outlives a change of those by at most ``Settings.api_refresh_s``."""

API_KEY_HEADER = "X-API-Key"
"""The request header that carries ``TICKLAKE_API_KEY``."""


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine (127.0.0.0/8, ::1,
    ``localhost``); ``0.0.0.0``, ``::`` and every other name or address do not."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve off loopback without an API key.

    Raises:
        ConfigError: ``serve_host`` is not loopback and ``api_key`` is unset.
    """
    if settings.api_key is None and not is_loopback(settings.serve_host):
        raise ConfigError(
            f"the prediction API binds to {settings.serve_host!r}, which is not loopback "
            "(127.0.0.1, ::1, localhost), and TICKLAKE_API_KEY is unset: set a key of 16+ "
            "characters (clients send it as X-API-Key) or bind to 127.0.0.1")


class BodySizeLimit:
    """ASGI middleware answering 413 to a request whose body exceeds ``max_bytes``.

    A ``Content-Length`` over the limit is refused before the body is read; a chunked body is
    counted as it arrives and refused once it passes the limit. Nothing larger than
    ``max_bytes`` is ever buffered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body over {self.max_bytes} bytes "
                                  "(TICKLAKE_API_MAX_BODY_BYTES)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException raised while reading the body through
                    raise self._too_large()
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except HTTPException as err:
            if err.status_code != 413 or started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = self._too_large()
        await JSONResponse({"detail": err.detail}, status_code=413,
                           headers={"Connection": "close"})(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    """The FastAPI app over ``settings.lake_dir`` (registry and Gold are read per request, so a
    new champion or new Gold rows are served without a restart).

    Raises:
        ConfigError: ``serve_host`` is not loopback and no API key is set
            (:func:`check_exposure`).
    """
    check_exposure(settings)
    key = settings.api_key.get_secret_value().encode() if settings.api_key else None
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                          description="TICKLAKE_API_KEY (required when one is set).")

    # a default, not Annotated: the annotation is a string here and cannot name ``header``
    async def require_key(given: str | None = Security(header)) -> None:
        if key is not None and (given is None
                                or not hmac.compare_digest(given.encode(), key)):
            raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header",
                                headers={"WWW-Authenticate": "APIKey"})

    # the key scheme only where a key is configured: a loopback server without one asks none
    app = FastAPI(
        dependencies=[Security(require_key)] if key is not None else [],
        responses={401: {"description": f"Missing or wrong {API_KEY_HEADER} header"}}
        if key is not None else {},
        title="ticklake prediction API",
        version="1",
        description="avg_price forecasts 1 and 5 trading days ahead (by default) of each "
        "ticker's champion model, with a conformal 80% prediction interval and the naive "
        "forecast. A model other than naive serves only where it beats naive significantly "
        "(Diebold-Mariano) on the walk-forward backtest.",
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and an echoed inf or NaN is not valid JSON
        # (a 500 instead of the 422): non-finite numbers are echoed as strings.
        return JSONResponse(status_code=422,
                            content={"detail": _json_safe(jsonable_encoder(exc.errors()))})

    metrics = CollectorRegistry()
    metrics.register(LakeCollector(settings))
    requests = Counter("ticklake_api_requests_total", "Prediction API requests.",
                       ["method", "route", "status"], registry=metrics)
    latency = Histogram("ticklake_api_request_duration_seconds",
                        "Prediction API request latency.", ["method", "route"],
                        registry=metrics)

    @app.middleware("http")
    async def count(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # the route template (/predict/{ticker}), not the path: one series per endpoint
        route = next((r.path for r in app.router.routes  # type: ignore[attr-defined]
                      if r.matches(request.scope)[0] == Match.FULL), "unmatched")
        started = time.perf_counter()
        response = await call_next(request)
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        requests.labels(request.method, route, str(response.status_code)).inc()
        return response

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    registry = Registry(settings.lake_dir)
    cache: dict[tuple[str, str], LoadedModel] = {}
    lock = threading.Lock()

    def champion_pointer(ticker: str) -> dict[str, Any]:
        champion = registry.champion(ticker)
        if champion is None:
            known = ", ".join(sorted(registry.champions())) or "none yet"
            why = ("its versions were trained by an older ticklake: run ticklake train"
                   if registry.versions(ticker) else "no model trained for it")
            raise HTTPException(404, f"no champion for {ticker!r} ({why}); tickers with a "
                                     f"champion: {known}")
        return champion

    def champion_model(ticker: str, version: str | None = None) -> LoadedModel:
        key = (ticker, version or champion_pointer(ticker)["version"])
        with lock:
            if key not in cache:
                try:
                    cache[key] = registry.load(*key, lstm="champion")
                except ModelError as err:  # the registry, not the request, is bad
                    raise HTTPException(503, f"champion {key[0]}/{key[1]} cannot be loaded: "
                                             f"{err}") from None
            return cache[key]

    def forecast(model: LoadedModel, price: Any, volume: Any, horizon: int) -> dict[str, Any]:
        if horizon not in model.horizons:
            raise HTTPException(422, f"{model.ticker}'s version {model.version} serves "
                                     f"horizons {sorted(model.horizons)}, not {horizon}")
        try:
            out = model.forecast(price, volume, horizon)
        except (ValueError, ArithmeticError) as err:
            raise HTTPException(422, f"cannot forecast from this window: {err}") from None
        if not all(math.isfinite(v) for v in out.values() if isinstance(v, float)):
            raise HTTPException(422, "the forecast is not finite for this window (prices too "
                                     "far apart)")
        return {**out, "ticker": model.ticker, "model_version": model.version,
                **backtest_fields(model.metadata, horizon, out["model"])}

    # GET /predict/{ticker}'s answer depends on the serving version and on two tables only:
    # it is kept, as encoded JSON, until one of them changes; they are looked at every
    # api_refresh_s seconds at most
    tables = [str(t.path(settings.lake_dir)) for t in (GOLD_DAILY_METRICS, GOLD_PREDICTIONS)]
    versions = Memo(lambda _: tuple(table_version(path) for path in tables),
                    settings.api_refresh_s)
    serving = Memo(lambda ticker: (registry.champion(ticker) or {}).get("version"),
                   settings.api_refresh_s)
    answers: dict[tuple[Any, ...], bytes] = {}

    def current_forecast(ticker: str, horizon: int) -> Forecast:
        """The horizon's champion forecast from the ticker's last ``window_days`` days in Gold:
        the one ``ticklake train`` stored in gold/predictions when its ``as_of`` is Gold's last
        day for the ticker, else made by the champion now."""
        champion = champion_pointer(ticker)
        version = champion["version"]
        if str(horizon) not in champion["horizons"]:
            served = sorted(int(h) for h in champion["horizons"])
            raise HTTPException(422, f"{ticker}'s version {version} serves horizons "
                                     f"{served}, not {horizon}")
        series = read_table(GOLD_DAILY_METRICS, settings.lake_dir,
                            ["trading_date", "avg_price", "total_volume"],
                            where=pc.field("ticker") == ticker).to_pandas()
        series = series.sort_values("trading_date")
        metadata = registry.metadata(ticker, version)
        window_days = int(metadata["window_days"])
        if len(series) < window_days:
            raise HTTPException(404, f"{ticker} has {len(series)} days in "
                                     f"{GOLD_DAILY_METRICS.name}; the model needs {window_days}")
        as_of = series["trading_date"].iloc[-1]
        row = stored_forecast(settings.lake_dir, ticker, horizon, version, as_of)
        if row is not None:
            return Forecast(**row, **backtest_fields(metadata, horizon, row["model"]))
        model = champion_model(ticker, version)
        out = forecast(model, series["avg_price"].to_numpy(), series["total_volume"].to_numpy(),
                       horizon)
        return Forecast(**out, as_of=as_of, target_date=trading_day_after(as_of, horizon, ticker))

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
             responses={404: {"description": "No champion, or too few days in Gold"},
                        422: {"description": "Malformed ticker, or a horizon the champion "
                                             "does not serve"},
                        503: {"description": "The champion's files cannot be loaded"}})
    async def predict_from_gold(ticker: TickerPath, horizon: HorizonQuery = 1) -> Response:
        key = (ticker, horizon, serving(ticker), *versions(None))
        body = answers.get(key)
        if body is None:  # Gold, the registry and maybe the model: off the event loop
            answer = await run_in_threadpool(current_forecast, ticker, horizon)
            body = answer.model_dump_json().encode()
            with lock:
                if len(answers) > ANSWER_CACHE_SIZE:
                    answers.clear()
                answers[key] = body
        return Response(body, media_type="application/json")

    @app.post("/predict", response_model=Forecast, summary="Champion forecast on a given window",
              responses={400: {"description": "The body is not JSON"},
                         404: {"description": "No champion for the ticker"},
                         413: {"description": "The body is over TICKLAKE_API_MAX_BODY_BYTES"},
                         422: {"description": "Malformed ticker or window"},
                         503: {"description": "The champion's files cannot be loaded"}})
    def predict_from_window(request: PredictRequest) -> Forecast:
        model = champion_model(request.ticker)
        if len(request.window) != model.window_days:
            raise HTTPException(422, f"window has {len(request.window)} days; the champion of "
                                     f"{request.ticker} needs exactly {model.window_days}")
        price = [d.avg_price for d in request.window]
        volume = [d.total_volume for d in request.window]
        return Forecast(**forecast(model, price, volume, request.horizon))

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
