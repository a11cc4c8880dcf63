"""Training on real daily metrics: walk-forward metrics at each horizon, conformal coverage,
Diebold-Mariano p-values, registry files, the champion rule, served forecasts, parallel
workers, reproducibility and retraining only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from analytics.significance import diebold_mariano
from config.calendar import trading_day_after
from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from producer.sources.replay import load_bokeh_bars
from storage.delta import read_table
from storage.sink import DeltaSink

pytestmark = [pytest.mark.integration]
REPRODUCIBLE_RTOL = 1e-6
"""Documented tolerance (docs/forecasts.md): a retrain on the same data gives the same metrics."""
MODELS = ("lstm", "naive", "sma", "linear")


def write_series(lake: Path, ticker: str, days: list, avg: np.ndarray, volume: np.ndarray
                 ) -> None:
    n = len(days)
    DeltaSink(GOLD_DAILY_METRICS, lake, "test").upsert(pa.table({
        "trading_date": pa.array(days, pa.date32()), "ticker": [ticker] * n, "avg_price": avg,
        "total_volume": pa.array(volume, pa.int64()), "trades": pa.array([4] * n, pa.int64()),
        "updated_at": pa.nulls(n, GOLD_DAILY_METRICS.schema.field("updated_at").type),
        "price_sum": avg * 4,
    }), None)


def write_daily_metrics(lake: Path, tickers: list[str], days: int) -> dict[str, np.ndarray]:
    """Real daily metrics as the pipeline computes them (mean of the 4 replay ticks)."""
    out = {}
    for ticker in tickers:
        bars = load_bokeh_bars([ticker]).tail(days)
        avg = ((bars.open + bars.high + bars.low + bars.close) / 4).to_numpy()
        write_series(lake, ticker, list(bars.day), avg, bars.volume.to_numpy())
        out[ticker] = avg
    return out


def write_momentum(lake: Path, days: int) -> np.ndarray:
    """MOM: daily returns with strong momentum (r_t = 0.8 r_t-1 + noise), on IBM's dates: a
    series where a model that reads the window beats "tomorrow = today" for real."""
    rng = np.random.default_rng(11)
    r = np.zeros(days)
    for t in range(1, days):
        r[t] = 0.8 * r[t - 1] + rng.normal(0, 0.01)
    avg = 50 * np.cumprod(1 + r)
    dates = list(load_bokeh_bars(["IBM"]).tail(days).day)
    write_series(lake, "MOM", dates, avg, rng.integers(10**6, 2 * 10**6, days))
    return avg


def test_train_backtests_registers_serves_and_forecasts(lake: Path) -> None:
    """IBM, MSFT (400 real days) and MOM (momentum), horizons 1 and 5, trained in 2 worker
    processes: per horizon the metrics recompute from backtest.csv (naive RMSE, skill, each
    model's interval coverage, DM p-value); the champion follows the rule; gold/predictions
    holds one row per ticker and horizon naming its model, equal to the forecast the final
    model made in training on the same window; MOM's momentum makes a model beat naive."""
    from analytics.registry import Registry
    from analytics.train import train_all

    avg = write_daily_metrics(lake, ["IBM", "MSFT"], 400)
    avg["MOM"] = write_momentum(lake, 400)
    settings = Settings(lake_dir=lake, epochs=2, train_workers=2, backtest_folds=3)
    results = train_all(settings, show_progress=False)
    assert [r.ticker for r in results] == ["IBM", "MOM", "MSFT"]
    registry = Registry(lake)
    gold_version = DeltaTable(str(GOLD_DAILY_METRICS.path(lake))).version()
    for result in results:
        assert result.skipped is None and result.version and result.promoted
        folder = lake / "models" / result.ticker / result.version
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["format"] == 2 and sorted(meta["horizons"]) == ["1", "5"]
        assert meta["data"]["gold_version"] == gold_version and meta["data"]["rows"] == 400
        assert meta["code"]["commit"] is None or len(meta["code"]["commit"]) == 40
        # h=1: 393 windows, 79 held out (27, 26, 26); h=5: 389 windows, 78 held out
        for h, sizes in ((1, [27, 26, 26]), (5, [26, 26, 26])):
            entry = meta["horizons"][str(h)]
            assert [f["test_windows"] for f in entry["backtest"]["folds"]] == sizes
            n = sum(sizes)
            backtest = pd.read_csv(folder / f"h{h}" / "backtest.csv")
            actual, last = avg[result.ticker][-n:], avg[result.ticker][-n - h:-h]
            np.testing.assert_allclose(backtest["actual"], actual)
            np.testing.assert_allclose(backtest["last"], last)
            overall = entry["backtest"]["overall"]
            assert overall["naive"]["rmse"] == pytest.approx(
                np.sqrt(np.mean((actual - last) ** 2)))
            for m in MODELS:
                inside = ((backtest[f"{m}_lower"] <= backtest["actual"])
                          & (backtest["actual"] <= backtest[f"{m}_upper"])).mean()
                assert overall[m]["coverage_80"] == pytest.approx(inside)
                assert overall[m]["skill"] == pytest.approx(
                    1 - overall[m]["rmse"] / overall["naive"]["rmse"])
            dm = diebold_mariano(backtest["actual"], backtest["lstm"], backtest["naive"], h)
            assert overall["lstm"]["dm"]["p_value"] == pytest.approx(dm.p_value)
            champion = entry["champion"]["model"]
            significant = [m for m in MODELS if m != "naive" and overall[m]["dm"]
                           and overall[m]["dm"]["statistic"] < 0
                           and overall[m]["dm"]["p_value_better"] < 0.05]
            assert champion == min(["naive", *significant], key=lambda m: overall[m]["rmse"])
            assert (folder / f"h{h}" / "backtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if result.ticker == "MOM":
            assert meta["horizons"]["1"]["champion"]["model"] in ("linear", "lstm")
    predictions = read_table(GOLD_PREDICTIONS, lake).to_pylist()
    assert sorted((p["ticker"], p["horizon"]) for p in predictions) == [
        (t, h) for t in ("IBM", "MOM", "MSFT") for h in (1, 5)]
    for p in predictions:
        meta = registry.metadata(p["ticker"], p["model_version"])
        entry = meta["horizons"][str(p["horizon"])]
        assert p["model"] == entry["champion"]["model"]
        assert p["naive_avg_price"] == pytest.approx(avg[p["ticker"]][-1])
        assert p["target_date"] == trading_day_after(p["as_of"], p["horizon"], p["ticker"])
        # the served forecast (saved, loaded model) = the final model's in training
        rel = entry["latest_forecast"]["relative"][p["model"]]
        assert p["predicted_avg_price"] == pytest.approx(avg[p["ticker"]][-1] * (1 + rel),
                                                         rel=1e-5)
        assert p["lower_80"] < p["predicted_avg_price"] < p["upper_80"]
    gold = read_table(GOLD_DAILY_METRICS, lake).to_pandas().sort_values("trading_date")
    for result in results:  # every saved model, champion or not, serves what training computed
        loaded = registry.load(result.ticker, result.version)
        rows = gold[gold["ticker"] == result.ticker]
        for h in (1, 5):
            expected = loaded.metadata["horizons"][str(h)]["latest_forecast"]["relative"]
            for m in MODELS:
                served = loaded.forecast(rows["avg_price"].to_numpy(),
                                         rows["total_volume"].to_numpy(), h, model=m)
                assert served["predicted_avg_price"] == pytest.approx(
                    avg[result.ticker][-1] * (1 + expected[m]), rel=1e-5)

    # the same data again, one process this time: the same metrics; the new version serves
    again = train_all(settings.with_overrides(train_workers=1), show_progress=False)
    for first, second in zip(results, again, strict=True):
        assert second.version != first.version and second.promoted
        for h in (1, 5):
            for model in MODELS:
                assert second.horizons[h]["overall"][model]["rmse"] == pytest.approx(
                    first.horizons[h]["overall"][model]["rmse"], rel=REPRODUCIBLE_RTOL)
        assert registry.champion(second.ticker)["version"] == second.version
    # nothing changed in Gold: --changed-only trains nothing
    skipped = train_all(settings, changed_only=True, show_progress=False)
    assert all(r.skipped and r.skipped.startswith("unchanged since") for r in skipped)
    assert all(len(registry.versions(t)) == 2 for t in ("IBM", "MSFT", "MOM"))


def test_too_short_history_is_skipped_with_the_reason(lake: Path) -> None:
    """20 days cannot make 4 walk-forward folds of 7-day windows: skipped, no model written."""
    from analytics.train import train_all

    write_daily_metrics(lake, ["IBM"], 20)
    [result] = train_all(Settings(lake_dir=lake, epochs=1), show_progress=False)
    assert result.version is None and "would fit on" in result.skipped
    assert not (lake / "models").exists()


def test_start_after_starts_the_workers_then_waits_for_the_file(lake: Path, tmp_path: Path
                                                                 ) -> None:
    """`ticklake train --start-after FILE` (as `ticklake up` starts it while the jobs run):
    both worker processes are up before Gold exists, nothing is read until FILE appears, and
    the models are then trained on the Gold written meanwhile (its version and rows)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from config.runtime import child_environment

    gate = tmp_path / "caught-up"
    log_path = tmp_path / "train.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ticklake", "train", "--lake", str(lake), "--epochs", "1",
             "--folds", "2", "--workers", "2", "--json", "--start-after", str(gate)],
            stdout=subprocess.PIPE, stderr=out, env=child_environment(),
            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "the training starts once" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert "2 training processes ready" in log_path.read_text()
        assert not GOLD_DAILY_METRICS.path(lake).exists()  # nothing to read yet
        write_daily_metrics(lake, ["IBM", "MSFT"], 200)
        gold_version = DeltaTable(str(GOLD_DAILY_METRICS.path(lake))).version()
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting for the file
        gate.touch()
        stdout, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log_path.read_text()
    results = json.loads(stdout)
    assert [r["ticker"] for r in results] == ["IBM", "MSFT"]
    for result in results:
        assert result["skipped"] is None and result["version"]
        meta = json.loads((lake / "models" / result["ticker"] / result["version"]
                           / "metadata.json").read_text())
        assert meta["data"]["gold_version"] == gold_version and meta["data"]["rows"] == 200
