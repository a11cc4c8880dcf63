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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from analytics.backtest import MODELS, walk_forward
from analytics.features import FEATURES, make_windows
from analytics.folds import Fold, final_fold, walk_forward_folds
from analytics.lstm import INTERVAL, LSTM_SPEC, fit_lstm
from analytics.parallel import ProgressBars, init_tensorflow, run_in_processes
from analytics.plot import backtest_plot
from analytics.predictions import write_predictions
from analytics.registry import Registry, code_version, data_fingerprint
from config.errors import TableMissing
from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS
from storage.delta import open_table, read_table

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
        "hyper_parameters": LSTM_SPEC.metadata(epochs),
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


def _train_in_worker(args: tuple[Any, ...], events: Any) -> TrainResult:
    series, ticker, settings, gold_version, now = args

    def progress(t: str, done: int, total: int, stage: str) -> None:
        events.put((t, done, total, stage))

    return train_ticker(series, ticker, settings, gold_version, now, progress)


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
    bars = ProgressBars([job[1] for job in jobs], show_progress)
    try:
        if settings.train_workers > 1 and len(jobs) > 1:
            trained = run_in_processes(_train_in_worker, jobs, settings.train_workers,
                                       settings.train_threads, bars)
        else:
            if jobs and "tensorflow" not in sys.modules:  # else its threads are fixed already
                init_tensorflow(settings.train_threads)
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


