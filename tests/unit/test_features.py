"""LSTM windowing and the JSON scaler."""

from pathlib import Path

import numpy as np
import pytest

from analytics.features import Scaler, make_windows, window_volatility


def test_window_shapes_and_relative_values() -> None:
    """n days and window w give n - w windows of shape (w, 2), relative to the last day."""
    price = np.array([10.0, 11, 12, 13, 14, 15, 16, 17, 18, 20])
    volume = np.arange(10) * 100.0
    w = make_windows(price, volume, 7)
    assert w.X.shape == (3, 7, 2) and w.X.dtype == np.float32 and w.y.shape == (3,)
    assert w.X[0, :, 0] == pytest.approx(price[:7] / 16 - 1)
    assert w.X[0, -1, 0] == 0.0 and w.X[0, :, 1] == pytest.approx(np.log1p(volume[:7]))
    assert w.y == pytest.approx([17 / 16 - 1, 18 / 17 - 1, 20 / 18 - 1])
    assert list(w.end_index) == [6, 7, 8] and list(w.target_price) == [17, 18, 20]


def test_a_horizon_moves_the_target_and_drops_the_windows_without_one() -> None:
    """Horizon 2: the target is two days after the window's last day, so 10 days and window 7
    give 2 windows; include_last adds the 2 whose targets lie beyond the series."""
    price = np.array([10.0, 11, 12, 13, 14, 15, 16, 17, 18, 20])
    w = make_windows(price, np.ones(10), 7, horizon=2)
    assert list(w.end_index) == [6, 7] and list(w.target_price) == [18, 20]
    assert w.y == pytest.approx([18 / 16 - 1, 20 / 17 - 1]) and w.horizon == 2
    last = make_windows(price, np.ones(10), 7, include_last=True, horizon=2)
    assert list(last.end_index) == [6, 7, 8, 9] and np.isnan(last.y[2:]).all()
    with pytest.raises(ValueError, match="horizon"):
        make_windows(price, np.ones(10), 7, horizon=0)


def test_window_volatility_is_the_rms_of_daily_changes() -> None:
    price = np.array([100.0, 101, 99, 99, 102, 100, 100])
    w = make_windows(np.append(price, 100.0), np.ones(8), 7)
    changes = np.diff(price) / price[:-1]
    assert window_volatility(w.X)[0] == pytest.approx(np.sqrt(np.mean(changes ** 2)), rel=1e-6)
    flat = make_windows(np.full(8, 5.0), np.ones(8), 7)
    assert window_volatility(flat.X)[0] == 0.0


def test_include_last_adds_the_forecast_window_without_target() -> None:
    """The extra final window ends on the last day and has an unknown (NaN) target."""
    w = make_windows(np.arange(1.0, 11.0), np.ones(10), 7, include_last=True)
    assert w.X.shape == (4, 7, 2) and w.end_index[-1] == 9 and np.isnan(w.y[-1])


def test_too_short_series_gives_no_windows_and_bad_input_raises() -> None:
    """Fewer days than the window: zero windows. Non-positive prices: an error."""
    assert make_windows(np.ones(5), np.ones(5), 7).X.shape == (0, 7, 2)
    with pytest.raises(ValueError, match="> 0"):
        make_windows(np.array([1.0, 0.0, 2.0]), np.ones(3), 2)


def test_scaler_uses_only_the_data_it_is_fitted_on(tmp_path: Path) -> None:
    """Fitted on training windows only; JSON round trip gives the same transform."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7, 2)).astype(np.float32)
    X[:, :, 1] += 10
    y = rng.normal(scale=0.02, size=50).astype(np.float32)
    scaler = Scaler.fit(X[:40], y[:40])
    assert scaler.log_volume_mean == pytest.approx(float(X[:40, :, 1].mean()), rel=1e-6)
    assert scaler.target_std == pytest.approx(float(y[:40].std()), rel=1e-6)
    scaler.save(tmp_path / "scaler.json")
    again = Scaler.load(tmp_path / "scaler.json")
    assert np.array_equal(again.transform(X), scaler.transform(X))
    assert abs(float(scaler.transform(X[:40])[:, :, 1].mean())) < 1e-5
