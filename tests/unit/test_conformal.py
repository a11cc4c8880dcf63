"""Conformal intervals: the quantile by hand, no residual from the future, coverage that holds
when volatility changes (where a fixed residual-quantile interval does not)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.conformal import adaptive_intervals, conformal_quantile


def test_the_quantile_is_the_ceil_rank_of_the_scores() -> None:
    """9 scores 1..9, alpha 0.2: rank ceil(0.8 x 10) = 8 -> 8. Alpha too small for 9 scores:
    the largest; alpha >= 1: zero width."""
    scores = np.arange(9.0, 0.0, -1.0)
    assert conformal_quantile(scores, 0.2) == 8.0
    assert conformal_quantile(scores, 0.5) == 5.0
    assert conformal_quantile(scores, 0.01) == 9.0
    assert conformal_quantile(scores, 1.2) == 0.0
    with pytest.raises(ValueError, match="no calibration"):
        conformal_quantile(np.array([]), 0.2)


def run(actual: np.ndarray, horizon: int, gamma: float = 0.01):
    n = len(actual)
    return adaptive_intervals(np.arange(100, 100 + n), np.zeros(n), actual, np.ones(n), horizon,
                              np.full(50, 100), np.abs(np.random.default_rng(0).normal(size=50)),
                              gamma=gamma)


@pytest.mark.parametrize("horizon", [1, 5])
def test_no_interval_uses_a_residual_realised_after_its_origin(horizon: int) -> None:
    """Rewriting every actual whose target day is after origin t (huge values) moves no
    interval issued at or before t: the residual of a forecast made at s is used only from day
    s + horizon on."""
    rng = np.random.default_rng(1)
    actual = rng.normal(0, 1, 300)
    base = run(actual, horizon)
    for cut in (0, 37, 150, 299):  # the forecast made on day 100 + cut
        poisoned = actual.copy()
        target_day = np.arange(300) + horizon
        poisoned[target_day > cut] = 1e6
        again = run(poisoned, horizon)
        np.testing.assert_array_equal(again.upper[:cut + 1], base.upper[:cut + 1])
        np.testing.assert_array_equal(again.lower[:cut + 1], base.lower[:cut + 1])
    # and the very next forecast after a realised poison does move: the check has teeth
    poisoned = actual.copy()
    poisoned[10] = 1e6
    moved = run(poisoned, horizon)
    assert (moved.upper[:10 + horizon] == base.upper[:10 + horizon]).all()
    assert (moved.upper[10 + horizon:] != base.upper[10 + horizon:]).any()


def test_a_seed_score_from_after_the_first_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="after the first forecast's origin"):
        adaptive_intervals(np.arange(10, 20), np.zeros(10), np.zeros(10), np.ones(10), 1,
                           np.array([5, 11]), np.ones(2))


def test_coverage_holds_through_a_volatility_regime_change() -> None:
    """Returns whose volatility triples for a year, then halves. Scaled by each window's
    volatility and adapted online, the 80% interval covers 77-83% overall and in each regime;
    a fixed interval from the calm period's residual quantiles covers far less in the storm."""
    rng = np.random.default_rng(4)
    sigma = np.concatenate([np.full(500, 0.01), np.full(250, 0.03), np.full(500, 0.015)])
    actual = rng.normal(0, sigma)
    scale = sigma * rng.uniform(0.7, 1.3, len(sigma))  # a noisy volatility estimate
    seed = np.abs(actual[:200]) / scale[:200]
    test = slice(200, None)
    origin = np.arange(len(sigma))[test]
    intervals = adaptive_intervals(origin, np.zeros(len(origin)), actual[test], scale[test], 1,
                                   origin[:1] - 1, seed)
    inside = (intervals.lower <= actual[test]) & (actual[test] <= intervals.upper)
    assert 0.77 <= inside.mean() <= 0.83
    storm = slice(300, 550)  # days 500-749 within the test part
    assert 0.75 <= inside[storm].mean() <= 0.85
    fixed = np.quantile(np.abs(actual[:200]), 0.8)
    assert (np.abs(actual[test])[storm] <= fixed).mean() < 0.5
    assert 0.0 < intervals.state.alpha < 1.0 and intervals.state.scores == 500
