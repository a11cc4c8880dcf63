"""Train, backtest, register and serve per-ticker forecasts on ``gold/daily_metrics``.

For each ticker (in parallel worker processes, ``Settings.train_workers`` x
``Settings.train_threads``) and each horizon of ``Settings.forecast_horizons``:

1. windows of ``window_days`` days with the horizon's target (:mod:`analytics.features`);
2. a walk-forward backtest of the LSTM and the baselines, with conformal 80% intervals and a
   Diebold-Mariano test of each model against naive (:mod:`analytics.backtest`);
3. the horizon's champion by the rule of :mod:`analytics.champion`;
4. the final LSTM on all windows (the last ``validation_fraction`` for early stopping) and the
   final linear baseline.

Each ticker gets a new registry version (:mod:`analytics.registry`) with the models, scalers,
metadata and backtest plots; it becomes the serving version. Afterwards every ticker's champion
forecasts each horizon from current Gold into ``gold/predictions``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.backtest import MODELS, BacktestResult, relative_forecasts, walk_forward
from analytics.baselines import LinearBaseline
from analytics.champion import choose_champion
from analytics.conformal import CALIBRATION_WINDOW, GAMMA, LEVEL
from analytics.features import FEATURES, Windows, make_windows
from analytics.folds import Fold, final_fold, walk_forward_folds
from analytics.lstm import LSTM_SPEC, fit_lstm
from analytics.parallel import ProgressBars, WorkerPool, init_tensorflow
from analytics.plot import backtest_plot
from analytics.predictions import write_predictions
from analytics.registry import FORMAT, Registry, code_version, data_fingerprint, horizon_dir
from config.errors import TableMissing
from config.runtime import lower_cpu_priority, wait_for_file
from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS
from storage.delta import open_table, read_table

log = logging.getLogger(__name__)
START_AFTER_NICE = 10
"""Nice levels added with ``start_after`` (``os.nice`` and the Linux autogroup's)."""

ProgressFn = Callable[[str, int, int, str], None]
"""``progress(ticker, epochs_done, epochs_total, stage)``; totals are upper bounds (early
stopping ends a fit sooner, the count then jumps to the fit's end)."""


@dataclass
class TrainResult:
    """Outcome of one ticker.

    ``skipped`` says why no version was trained (too little data, unchanged since the last
    version). ``horizons`` holds, per horizon, ``{"overall": pooled metrics per model,
    "champion": {"model", "reason"}, "test_days"}``; ``promoted``/``reason`` say whether the
    version now serves.
    """

    ticker: str
    version: str | None = None
    horizons: dict[int, dict[str, Any]] = field(default_factory=dict)
    promoted: bool | None = None
    reason: str | None = None
    skipped: str | None = None
    seconds: float = 0.0


def training_plan(n_windows: int, settings: Settings, horizon: int = 1
                  ) -> tuple[list[Fold], Fold]:
    """The walk-forward folds and the final model's split for ``n_windows`` windows at
    ``horizon``.

    Raises:
        ValueError: too few windows (the message gives the counts).
    """
    folds = walk_forward_folds(n_windows, settings.holdout_fraction, settings.backtest_folds,
                               settings.validation_fraction, horizon)
    return folds, final_fold(n_windows, settings.validation_fraction)


def train_ticker(
    series: pd.DataFrame, ticker: str, settings: Settings, gold_version: int, now: datetime,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Backtest, train and register one ticker at every horizon (see :func:`train_all` for
    what serves).

    Args:
        series: this ticker's rows of ``gold/daily_metrics`` (trading_date, avg_price,
            total_volume), any order.
        ticker: the symbol.
        settings: window, epochs, folds, fractions, seed, horizons, significance, lake.
        gold_version: Delta version of ``gold/daily_metrics`` the rows came from.
        now: UTC time, the version's name and ``created_at``.
        progress: epoch progress callback.
    """
    started = time.monotonic()
    series = series.sort_values("trading_date").reset_index(drop=True)
    dates = series["trading_date"]
    price, volume = series["avg_price"].to_numpy(), series["total_volume"].to_numpy()
    plans: dict[int, tuple[Windows, list[Fold], Fold]] = {}
    for h in settings.forecast_horizons:
        w = make_windows(price, volume, settings.window_days, horizon=h)
        try:
            plans[h] = (w, *training_plan(len(w.y), settings, h))
        except ValueError as err:
            return TrainResult(ticker, skipped=f"{len(series)} days, horizon {h}: {err}")
    epochs = settings.epochs
    fits_per_horizon = [len(folds) + 1 for _, folds, _ in plans.values()]
    n_fits = sum(fits_per_horizon)

    def reporter(offset: int, n_folds: int, h: int) -> Callable[[int, int, int], None]:
        def report(fit_number: int, done: int, _total: int) -> None:
            if progress:
                stage = (f"h={h} fold {fit_number + 1}/{n_folds}" if fit_number >= 0
                         else f"h={h} final model")
                index = offset + (fit_number if fit_number >= 0 else n_folds)
                progress(ticker, index * epochs + done, n_fits * epochs, stage)
        return report

    registry = Registry(settings.lake_dir)
    version, out = registry.new_version_dir(ticker, now)
    horizons: dict[str, dict[str, Any]] = {}
    offset = 0
    latest = make_windows(price, volume, settings.window_days, include_last=True).X[-1:]
    for (h, (w, folds, final)), n_h in zip(plans.items(), fits_per_horizon, strict=True):
        report = reporter(offset, len(folds), h)
        backtest = walk_forward(w, dates, folds, epochs, settings.seed, report)
        fitted = fit_lstm(w, final, epochs, settings.seed, partial(report, -1))
        report(-1, epochs, epochs)
        offset += n_h
        linear = LinearBaseline(fitted.scaler).fit(w.X, w.y)
        champion, why = choose_champion(backtest.overall, MODELS, settings.champion_significance)
        folder = horizon_dir(out, h)
        folder.mkdir()
        fitted.model.save(folder / "model.keras")
        fitted.scaler.save(folder / "scaler.json")
        linear.save(folder / "linear.json")
        _save_backtest(backtest, ticker, champion, folder)
        horizons[str(h)] = {
            "target": f"avg_price {h} trading day(s) after the window's last day, as "
                      "target / last avg_price - 1",
            "backtest": {"models": list(MODELS), "overall": backtest.overall,
                         "folds": backtest.folds, "test_days": len(backtest.frame)},
            "conformal": {m: dataclasses.asdict(c) for m, c in backtest.conformal.items()},
            "champion": {"model": champion, "reason": why},
            "final_model": {"fit_windows": len(final.fit),
                            "validation_windows": len(final.validation),
                            "epochs_run": fitted.epochs_run},
            "latest_forecast": {
                "as_of": str(dates.iloc[-1]),
                "relative": {m: float(f[0]) for m, f in
                             relative_forecasts(latest, fitted, linear).items()}},
        }
    metadata = {
        "format": FORMAT,
        "ticker": ticker,
        "version": version,
        "created_at": now.isoformat(),
        "code": code_version(),
        "features": list(FEATURES),
        "window_days": settings.window_days,
        "hyper_parameters": LSTM_SPEC.metadata(epochs),
        "seed": settings.seed,
        "backtest_folds": settings.backtest_folds,
        "holdout_fraction": settings.holdout_fraction,
        "validation_fraction": settings.validation_fraction,
        "data": {"gold_table": GOLD_DAILY_METRICS.name, "gold_version": gold_version,
                 "rows": len(series), "first_date": str(dates.iloc[0]),
                 "last_date": str(dates.iloc[-1]), "sha256": data_fingerprint(series)},
        "interval": {"level": LEVEL, "gamma": GAMMA, "calibration_window": CALIBRATION_WINDOW,
                     "method": "adaptive conformal inference (Gibbs & Candes 2021) on "
                               "volatility-normalised absolute residuals"},
        "champion_rule": {"significance": settings.champion_significance,
                          "rule": "lowest RMSE among naive and the models whose one-sided "
                                  "Diebold-Mariano p-value vs naive is below significance"},
        "horizons": horizons,
    }
    registry.write_metadata(ticker, version, metadata)
    return TrainResult(ticker, version, {
        int(h): {"overall": e["backtest"]["overall"], "champion": e["champion"],
                 "test_days": e["backtest"]["test_days"]} for h, e in horizons.items()},
        seconds=time.monotonic() - started)


def _save_backtest(backtest: BacktestResult, ticker: str, champion: str, folder: Path) -> None:
    backtest.frame.to_csv(folder / "backtest.csv", index=False)
    backtest_plot(backtest.frame, ticker, backtest.horizon, backtest.overall, champion,
                  folder / "backtest.png")


def _train_in_worker(args: tuple[Any, ...], events: Any) -> TrainResult:
    series, ticker, settings, gold_version, now = args

    def progress(t: str, done: int, total: int, stage: str) -> None:
        events.put((t, done, total, stage))

    return train_ticker(series, ticker, settings, gold_version, now, progress)


def train_all(
    settings: Settings, tickers: list[str] | None = None, changed_only: bool = False,
    show_progress: bool = True, start_after: Path | None = None,
) -> list[TrainResult]:
    """Train every ticker of ``gold/daily_metrics`` (or only ``tickers``), then serve the new
    versions and forecast every horizon.

    Args:
        settings: see :func:`train_ticker`; ``train_workers`` > 1 trains in that many
            processes (spawned), each with ``train_threads`` TensorFlow threads.
        tickers: restrict to these (default: every ticker in Gold).
        changed_only: skip a ticker whose newest version was trained on exactly its current
            rows (same :func:`~analytics.registry.data_fingerprint`).
        show_progress: one progress bar per ticker on stderr.
        start_after: start TensorFlow (and the worker processes) first, at a lower CPU
            priority (:data:`START_AFTER_NICE`, kept for the training), then wait until this
            file exists before reading Gold (``--start-after``: ``ticklake up`` starts the
            trainer while the jobs run, and their start-up keeps the CPU).

    Returns:
        One :class:`TrainResult` per ticker, in ticker order.

    Raises:
        TableMissing: ``gold/daily_metrics`` does not exist yet (run the pipeline first).
    """
    with ExitStack() as stack:
        pool = None
        if start_after is not None:
            lower_cpu_priority(START_AFTER_NICE)
            if settings.train_workers > 1:
                pool = stack.enter_context(WorkerPool(settings.train_workers,
                                                      settings.train_threads))
                pool.warm_up()
            else:
                init_tensorflow(settings.train_threads)
            log.info("the training starts once %s exists", start_after)
            wait_for_file(start_after)
        frame, gold_version, names, jobs, results = _plan(settings, tickers, changed_only)
        registry = Registry(settings.lake_dir)
        bars = ProgressBars([job[1] for job in jobs], show_progress)
        try:
            if pool is None and settings.train_workers > 1 and len(jobs) > 1:
                pool = stack.enter_context(WorkerPool(min(settings.train_workers, len(jobs)),
                                                      settings.train_threads))
            if pool is not None:
                trained = pool.run(_train_in_worker, jobs, bars)
            else:
                if jobs and "tensorflow" not in sys.modules:  # else its threads are fixed
                    init_tensorflow(settings.train_threads)
                trained = [train_ticker(*job, progress=bars.update) for job in jobs]
        finally:
            bars.close()
    for result in trained:
        results[result.ticker] = result
        if result.version:
            result.promoted, result.reason = registry.consider(result.ticker, result.version,
                                                               datetime.now(UTC))
            log.info("%s: version %s serves: %s", result.ticker, result.version, result.reason)
        elif result.skipped:
            log.warning("%s skipped: %s", result.ticker, result.skipped)
    write_predictions(settings, frame, names, registry)
    return [results[t] for t in names]


TrainJob = tuple[pd.DataFrame, str, Settings, int, datetime]
"""The arguments of :func:`train_ticker` before ``progress``: series, ticker, settings, Gold
version, training time."""


def _plan(settings: Settings, tickers: list[str] | None, changed_only: bool
          ) -> tuple[pd.DataFrame, int, list[str], list[TrainJob], dict[str, TrainResult]]:
    """Read ``gold/daily_metrics``; return it, its version, the tickers, one training job per
    ticker to train (longest series first) and the results of the tickers skipped.

    Raises:
        TableMissing: ``gold/daily_metrics`` does not exist yet.
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
    jobs: list[TrainJob] = []
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
    jobs.sort(key=lambda job: -len(job[0]))  # longest first: the workers end closer together
    return frame, gold_version, names, jobs, results
