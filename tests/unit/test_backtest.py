"""Walk-forward folds, forecast metrics, baselines and the scaler's leakage guard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.backtest import forecast_metrics, score, walk_forward
from analytics.baselines import LinearBaseline, naive_forecast, sma_forecast
from analytics.features import Scaler, make_windows
from analytics.folds import MIN_FIT_WINDOWS, final_fold, walk_forward_folds


def test_folds_are_chronological_expanding_and_cover_the_holdout_once() -> None:
    """100 windows, 20% held out in 4 folds: test blocks 80-84, 85-89, 90-94, 95-99; each
    fold trains on every window before its block, the last 10% of them for validation."""
    folds = walk_forward_folds(100, 0.2, 4, 0.1)
    assert [list(f.test) for f in folds] == [list(range(s, s + 5)) for s in (80, 85, 90, 95)]
    for fold in folds:
        start = fold.test.start
        assert fold.fit.start == 0 and fold.fit.stop == fold.validation.start
        assert fold.validation.stop == start  # nothing between training and test
        assert len(fold.validation) == round(start * 0.1)
        assert max(fold.validation) < min(fold.test)
    assert [f.test.start for f in folds] == sorted(f.test.start for f in folds)


def test_a_longer_horizon_leaves_a_gap_before_each_test_block() -> None:
    """Horizon 5: the 4 windows before a test block have targets inside it; no fold trains or
    validates on them, so everything a fold learns from was known on its first test day."""
    folds = walk_forward_folds(100, 0.2, 4, 0.1, horizon=5)
    for fold in folds:
        assert fold.validation.stop == fold.test.start - 4
        last_target_day = fold.validation.stop - 1 + 5  # window index + horizon (in days)
        assert last_target_day <= fold.test.start  # known by the first test origin


def test_uneven_blocks_differ_by_at_most_one_and_too_few_windows_raise() -> None:
    folds = walk_forward_folds(103, 0.2, 3, 0.1)  # 21 test windows: 7, 7, 7
    assert [len(f.test) for f in folds] == [7, 7, 7] and folds[-1].test.stop == 103
    sizes = [len(f.test) for f in walk_forward_folds(200, 0.11, 4, 0.1)]  # 22 = 6+6+5+5
    assert sizes == [6, 6, 5, 5]
    with pytest.raises(ValueError, match="fold 0 would fit on"):
        walk_forward_folds(MIN_FIT_WINDOWS + 5, 0.5, 2, 0.1)


def test_final_fold_fits_on_everything_but_the_validation_tail() -> None:
    fold = final_fold(200, 0.1)
    assert fold.fit == range(0, 180) and fold.validation == range(180, 200) and not fold.test


def test_forecast_metrics_by_hand() -> None:
    actual, predicted, last = np.array([10.0, 11, 9]), np.array([10.5, 10.5, 10]), np.full(3, 10.0)
    m = forecast_metrics(actual, predicted, last)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0.25 + 1) / 3))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["mape"] == pytest.approx((0.5 / 10 + 0.5 / 11 + 1 / 9) / 3 * 100)
    # days that moved: 11 (forecast up: right) and 9 (forecast flat: wrong)
    assert m["directional_accuracy"] == 0.5 and m["n"] == 3
    assert forecast_metrics(actual, last, last)["directional_accuracy"] is None


def test_score_gives_skill_coverage_and_the_dm_test_per_model() -> None:
    frame = pd.DataFrame({
        "actual": [10.0, 12.0, 8.0, 11.0], "last": [10.0, 10.0, 10.0, 10.0],
        "lstm": [10.0, 11.0, 9.0, 11.0], "naive": [10.0] * 4, "sma": [9.0] * 4,
        "linear": [10.0, 12.0, 8.0, 11.0],
    })
    for m in ("lstm", "naive", "sma", "linear"):
        frame[f"{m}_lower"], frame[f"{m}_upper"] = frame[m] - 0.5, frame[m] + 0.5
    frame.loc[3, "lstm_upper"] = 12.0
    s = score(frame)
    naive_rmse = math.sqrt((0 + 4 + 4 + 1) / 4)
    assert s["naive"]["skill"] == 0.0
    assert s["lstm"]["skill"] == pytest.approx(1 - math.sqrt((0 + 1 + 1 + 0) / 4) / naive_rmse)
    assert s["linear"]["skill"] == 1.0  # perfect forecasts
    assert s["lstm"]["coverage_80"] == 0.5  # 12 and 8 lie outside +-0.5; 11 inside [10.5, 12]
    assert s["linear"]["coverage_80"] == 1.0 and s["naive"]["coverage_80"] == 0.25
    assert s["naive"]["dm"] is None and s["lstm"]["dm"]["n"] == 4
    assert s["lstm"]["dm"]["statistic"] < 0  # smaller squared errors than naive


def test_baselines_on_real_windows_match_their_definitions() -> None:
    """Naive = last price; SMA = mean of the window's prices; recomputed from the raw series."""
    rng = np.random.default_rng(1)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    volume = rng.integers(1_000, 5_000, 60).astype(float)
    w = make_windows(price, volume, 7)
    np.testing.assert_allclose(w.last_price * (1 + naive_forecast(w.X)), price[6:-1])
    sma = np.array([price[i:i + 7].mean() for i in range(len(w.y))])
    np.testing.assert_allclose(w.last_price * (1 + sma_forecast(w.X)), sma, rtol=1e-6)


def test_linear_baseline_recovers_an_exact_linear_relation() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(0, 0.01, (200, 7, 2)).astype(np.float32)
    X[:, :, 1] = rng.normal(8, 1, (200, 7))
    scaler = Scaler.fit(X, np.ones(200))
    design = scaler.transform(X).reshape(200, -1).astype(np.float64)
    coef = rng.normal(0, 0.01, 14)
    y = design @ coef + 0.001
    linear = LinearBaseline(scaler).fit(X, y)
    np.testing.assert_allclose(linear.predict(X), y, atol=1e-9)


def test_each_fold_scaler_sees_only_its_fit_windows() -> None:
    """Volumes jump 100x after day 100: a scaler fitted on any validation or test window would
    have a different mean. Each fold's scaler equals the one fitted on its fit part alone."""
    rng = np.random.default_rng(3)
    n = 160
    price = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    volume = np.where(np.arange(n) < 100, 1_000.0, 100_000.0) * rng.uniform(0.9, 1.1, n)
    w = make_windows(price, volume, 7)
    dates = pd.Series(pd.bdate_range("2012-01-02", periods=n).date)
    folds = walk_forward_folds(len(w.y), 0.2, 2, 0.25)
    result = walk_forward(w, dates, folds, epochs=1, seed=7)
    for fold, scaler in zip(folds, result.scalers, strict=True):
        fit = list(fold.fit)
        assert scaler == Scaler.fit(w.X[fit], w.y[fit])
        with_validation = Scaler.fit(w.X[: fold.validation.stop], w.y[: fold.validation.stop])
        assert scaler.log_volume_mean < with_validation.log_volume_mean
    assert list(result.frame["date"]) == list(dates.iloc[[f + 7 for f in range(
        folds[0].test.start, folds[-1].test.stop)]])
    assert len(result.frame) == sum(len(f.test) for f in folds)
    np.testing.assert_allclose(result.frame["naive"], result.frame["last"])
    for m in ("lstm", "naive", "sma", "linear"):  # every model has an interval around it
        assert (result.frame[f"{m}_lower"] <= result.frame[m]).all()
        assert (result.frame[m] <= result.frame[f"{m}_upper"]).all()
