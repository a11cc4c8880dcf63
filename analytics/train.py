"""Train, backtest, register and promote one Keras LSTM per ticker on ``gold/daily_metrics``.

For each ticker (in parallel worker processes, ``Settings.train_workers`` x
``Settings.train_threads``):

1. windows of ``window_days`` days (:mod:`analytics.features`);
2. a walk-forward backtest of the LSTM and the baselines (:mod:`analytics.backtest`);
3. the final LSTM on all windows (the last ``validation_fraction`` for early stopping and the
   80% interval's residual quantiles);
4. a new registry version (:mod:`analytics.registry`) with the model, scaler, metadata and
   backtest plot; the champion pointer moves only if the rule of
   :func:`analytics.registry.promotion_decision` says so.

Afterwards each ticker's champion forecasts the next trading day from current Gold into
``gold/predictions`` (with its interval and the naive forecast).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from analytics.backtest import (
    INTERVAL,
    MODELS,
    Fold,
    final_fold,
    fit_lstm,
    walk_forward,
    walk_forward_folds,
)
from analytics.features import FEATURES, make_windows
from analytics.plot import backtest_plot
from analytics.registry import Registry, code_version, data_fingerprint, next_business_day
from config.errors import TableMissing
from config.runtime import pin_tensorflow_threads
from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from storage.delta import open_table, read_table
from storage.sink import DeltaSink

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int, str], None]
"""``progress(ticker, epochs_done, epochs_total, stage)``; totals are upper bounds (early
stopping ends a fit sooner, the count then jumps to the fit's end)."""


@dataclass
class TrainResult:
    """Outcome of one ticker.

    ``skipped`` says why no version was trained (too little data, unchanged since the last
    version); ``promoted``/``reason`` give the champion decision for a new version.
    """

    ticker: str
    version: str | None = None
    skill: float | None = None
    overall: dict[str, Any] | None = None
    promoted: bool | None = None
    reason: str | None = None
    skipped: str | None = None
    seconds: float = 0.0


def training_plan(n_windows: int, settings: Settings) -> tuple[list[Fold], Fold]:
    """The walk-forward folds and the final model's split for ``n_windows`` windows.

    Raises:
        ValueError: too few windows (the message gives the counts).
    """
    folds = walk_forward_folds(n_windows, settings.holdout_fraction, settings.backtest_folds,
                               settings.validation_fraction)
    return folds, final_fold(n_windows, settings.validation_fraction)


def train_ticker(
    series: pd.DataFrame, ticker: str, settings: Settings, gold_version: int, now: datetime,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Backtest, train and register one ticker (no promotion; see :func:`train_all`).

    Args:
        series: this ticker's rows of ``gold/daily_metrics`` (trading_date, avg_price,
            total_volume), any order.
        ticker: the symbol.
        settings: window, epochs, folds, fractions, seed, lake directory.
        gold_version: Delta version of ``gold/daily_metrics`` the rows came from.
        now: UTC time, the version's name and ``created_at``.
        progress: epoch progress callback.
    """
    started = time.monotonic()
    series = series.sort_values("trading_date").reset_index(drop=True)
    dates = series["trading_date"]
    w = make_windows(series["avg_price"].to_numpy(), series["total_volume"].to_numpy(),
                     settings.window_days)
    try:
        folds, final = training_plan(len(w.y), settings)
    except ValueError as err:
        return TrainResult(ticker, skipped=f"{len(series)} days: {err}")
    epochs, n_fits = settings.epochs, len(folds) + 1

    def report(fit_number: int, done: int, _total: int) -> None:
        if progress:
            stage = f"fold {fit_number + 1}/{len(folds)}" if fit_number >= 0 else "final model"
            index = fit_number if fit_number >= 0 else len(folds)
            progress(ticker, index * epochs + done, n_fits * epochs, stage)

    backtest = walk_forward(w, dates, folds, epochs, settings.seed, report)
    fitted = fit_lstm(w, final, epochs, settings.seed, lambda d, t: report(-1, d, t))
    report(-1, epochs, epochs)

    registry = Registry(settings.lake_dir)
    version, out = registry.new_version_dir(ticker, now)
    fitted.model.save(out / "model.keras")
    fitted.scaler.save(out / "scaler.json")
    backtest.frame.to_csv(out / "backtest.csv", index=False)
    backtest_plot(backtest.frame, ticker, backtest.overall, out / "backtest.png")
    skill = backtest.overall["lstm"]["skill"]
    metadata = {
        "ticker": ticker,
        "version": version,
        "created_at": now.isoformat(),
        "code": code_version(),
        "features": list(FEATURES),
        "window_days": settings.window_days,
        "target": "next trading day's avg_price, as avg_price / last avg_price - 1",
        "hyper_parameters": {"layers": "LSTM(32) -> Dense(1)", "optimizer": "Adam(1e-3)",
                             "loss": "mse", "batch_size": 64, "max_epochs": epochs,
                             "early_stopping_patience": 5},
        "seed": settings.seed,
        "backtest_folds": len(folds),
        "holdout_fraction": settings.holdout_fraction,
        "validation_fraction": settings.validation_fraction,
        "data": {"gold_table": GOLD_DAILY_METRICS.name, "gold_version": gold_version,
                 "rows": len(series), "first_date": str(dates.iloc[0]),
                 "last_date": str(dates.iloc[-1]), "sha256": data_fingerprint(series)},
        "final_model": {"fit_windows": len(final.fit),
                        "validation_windows": len(final.validation),
                        "epochs_run": fitted.epochs_run},
        "interval": {"level": 0.8, "quantiles": list(INTERVAL),
                     "residual_quantiles": list(fitted.residual_quantiles),
                     "method": "quantiles of relative validation residuals",
                     "backtest_coverage": backtest.overall["coverage_80"]},
        "validation_skill": skill,
        "backtest": {"models": list(MODELS), "overall": backtest.overall,
                     "folds": backtest.folds},
    }
    registry.write_metadata(ticker, version, metadata)
    return TrainResult(ticker, version, skill, backtest.overall,
                       seconds=time.monotonic() - started)


def _init_worker(threads: int) -> None:
    """Pin TensorFlow to ``threads`` threads in a worker, before it is imported."""
    pin_tensorflow_threads(threads)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its threads
        log.debug("TensorFlow already initialised; train_threads=%d not applied", threads)


def _train_in_worker(args: tuple, events: Any) -> TrainResult:
    series, ticker, settings, gold_version, now = args

    def progress(t: str, done: int, total: int, stage: str) -> None:
        events.put((t, done, total, stage))

    return train_ticker(series, ticker, settings, gold_version, now, progress)


class _Bars:
    """One tqdm bar per ticker, fed by progress events."""

    def __init__(self, tickers: list[str], enabled: bool) -> None:
        self.bars = {t: tqdm(total=1, desc=f"train {t:<6}", unit="epoch", position=i,
                             leave=True, disable=not enabled) for i, t in enumerate(tickers)}

    def update(self, ticker: str, done: int, total: int, stage: str) -> None:
        bar = self.bars[ticker]
        bar.total = total
        bar.n = done
        bar.set_postfix_str(stage, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _run_parallel(jobs: list[tuple], settings: Settings, bars: _Bars) -> list[TrainResult]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        events = manager.Queue()
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                try:
                    bars.update(*events.get(timeout=0.2))
                except queue.Empty:
                    continue

        pumper = threading.Thread(target=pump, daemon=True)
        pumper.start()
        try:
            with ProcessPoolExecutor(max_workers=min(settings.train_workers, len(jobs)),
                                     mp_context=ctx, initializer=_init_worker,
                                     initargs=(settings.train_threads,)) as pool:
                futures = [pool.submit(_train_in_worker, job, events) for job in jobs]
                return [f.result() for f in futures]
        finally:
            stop.set()
            pumper.join()


def train_all(
    settings: Settings, tickers: list[str] | None = None, changed_only: bool = False,
    show_progress: bool = True,
) -> list[TrainResult]:
    """Train every ticker of ``gold/daily_metrics`` (or only ``tickers``), then promote and
    forecast.

    Args:
        settings: see :func:`train_ticker`; ``train_workers`` > 1 trains in that many
            processes (spawned), each with ``train_threads`` TensorFlow threads.
        tickers: restrict to these (default: every ticker in Gold).
        changed_only: skip a ticker whose newest version was trained on exactly its current
            rows (same :func:`~analytics.registry.data_fingerprint`).
        show_progress: one progress bar per ticker on stderr.

    Returns:
        One :class:`TrainResult` per ticker, in ticker order.

    Raises:
        TableMissing: ``gold/daily_metrics`` does not exist yet (run the pipeline first).
    """
    delta = open_table(GOLD_DAILY_METRICS, settings.lake_dir)
    if delta is None:
        raise TableMissing(
            f"{GOLD_DAILY_METRICS.path(settings.lake_dir)} does not exist: run the pipeline "
            "first (ticklake up, or ticklake job gold)"
        )
    gold_version = delta.version()
    frame = read_table(GOLD_DAILY_METRICS, settings.lake_dir).to_pandas()
    names = sorted(frame["ticker"].unique()) if not tickers else list(tickers)
    registry = Registry(settings.lake_dir)
    results: dict[str, TrainResult] = {}
    jobs = []
    now = datetime.now(UTC)
    for ticker in names:
        series = frame[frame["ticker"] == ticker]
        latest = registry.latest(ticker)
        if series.empty:
            results[ticker] = TrainResult(ticker, skipped="no rows in gold/daily_metrics")
        elif changed_only and latest and latest["data"]["sha256"] == data_fingerprint(series):
            results[ticker] = TrainResult(
                ticker, skipped=f"unchanged since version {latest['version']}")
        else:
            jobs.append((series, ticker, settings, gold_version, now))
    bars = _Bars([job[1] for job in jobs], show_progress)
    try:
        if settings.train_workers > 1 and len(jobs) > 1:
            trained = _run_parallel(jobs, settings, bars)
        else:
            if jobs and "tensorflow" not in sys.modules:  # else its threads are fixed already
                _init_worker(settings.train_threads)
            trained = [train_ticker(*job, progress=bars.update) for job in jobs]
    finally:
        bars.close()
    for result in trained:
        results[result.ticker] = result
        if result.version:
            result.promoted, result.reason = registry.consider(result.ticker, result.version,
                                                               datetime.now(UTC))
        elif result.skipped:
            log.warning("%s skipped: %s", result.ticker, result.skipped)
    write_predictions(settings, frame, names, registry)
    return [results[t] for t in names]


def write_predictions(
    settings: Settings, frame: pd.DataFrame, tickers: list[str], registry: Registry
) -> list[dict[str, Any]]:
    """Forecast the next trading day for each ticker's champion into ``gold/predictions``.

    Tickers without a champion get no row (no version beat the naive forecast). ``as_of`` is
    the last trading date in Gold; ``target_date`` the next business day (Mon-Fri; exchange
    holidays are not known here). Rows are upserted on (ticker, target_date, model_version).

    Returns:
        The rows written.
    """
    rows = []
    created = datetime.now(UTC)
    for ticker in tickers:
        champion = registry.champion(ticker)
        series = frame[frame["ticker"] == ticker].sort_values("trading_date")
        if champion is None or series.empty:
            continue
        loaded = registry.load(ticker, champion["version"])
        if len(series) < loaded.window_days:
            continue
        as_of = series["trading_date"].iloc[-1]
        rows.append({
            "ticker": ticker,
            "as_of": as_of,
            "target_date": next_business_day(as_of),
            **loaded.forecast(series["avg_price"].to_numpy(), series["total_volume"].to_numpy()),
            "model_version": champion["version"],
            "created_at": created,
        })
    if rows:
        DeltaSink(GOLD_PREDICTIONS, settings.lake_dir, "train").upsert(
            pa.Table.from_pylist(rows, schema=GOLD_PREDICTIONS.schema), None)
    return rows

