"""Calibrated prediction intervals: adaptive conformal inference on normalised residuals.

The 80% interval of a forecast made at origin day ``t`` for day ``t + h`` is

    forecast_rel +/- q_t * scale_t        (relative to the window's last avg_price)

- ``scale_t`` is the forecast window's own volatility (:func:`analytics.features.window_volatility`)
  times ``sqrt(h)``: the interval widens as soon as the window turns volatile ("normalised"
  nonconformity scores, Lei, G'Sell, Rinaldo, Tibshirani & Wasserman 2018, "Distribution-free
  predictive inference for regression", JASA 113(523), section 5.2).
- ``q_t`` is the split-conformal quantile (Vovk, Gammerman & Shafer 2005, *Algorithmic Learning
  in a Random World*; Lei et al. 2018, eq. 3: the ``ceil((1 - a)(n + 1))``-th smallest of ``n``
  scores) of the newest :data:`CALIBRATION_WINDOW` scores ``|actual_rel - forecast_rel| /
  scale`` that were *realised* on or before day ``t``: a forecast's score joins the calibration
  set only once its target day ``origin + h`` has happened.
- The miscoverage level ``a_t`` adapts online (adaptive conformal inference, Gibbs & Candes
  2021, "Adaptive Conformal Inference Under Distribution Shift", NeurIPS 34, eq. 2):
  ``a_{t+1} = a_t + gamma * (alpha - err_t)`` with ``err_t`` = 1 when a realised actual fell
  outside the interval that was issued for it. A run of misses lowers ``a`` and widens the
  interval; updates arrive with the forecast's ``h``-day delay. Where the rank would exceed
  ``n`` (``a_t`` <= ``1 / (n + 1)``) the largest score stands in for the paper's infinite
  interval; ``a_t`` >= 1 gives a zero-width interval.

Nothing here looks at a residual whose target day is after the forecast it calibrates
(``tests/unit/test_conformal.py`` changes every later actual and checks no earlier interval
moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.8
"""Nominal coverage of every interval (80%)."""
GAMMA = 0.01
"""ACI step size (Gibbs & Candes 2021, "Adaptive conformal inference under distribution
shift", use 0.005); 0.01 adapts twice as fast. The coverage it gave on the sample tickers is in
docs/forecasts.md."""
CALIBRATION_WINDOW = 500
"""Newest realised scores the quantile is taken over (about two trading years)."""
MIN_SCALE = 1e-6
"""Smallest scale (1e-4 %/day): a window whose price never moved would otherwise divide by 0."""


@dataclass(frozen=True)
class ConformalState:
    """Where the calibration stands after the last realised forecast: what a new forecast's
    interval uses.

    Attributes:
        alpha: the adapted miscoverage level ``a_t``.
        quantile: the score quantile at ``alpha`` over the newest realised scores
            (multiply by the forecast's scale for the half-width, relative to last price).
        scores: how many realised scores the quantile was taken over.
    """

    alpha: float
    quantile: float
    scores: int

    def half_width(self, scale: np.ndarray) -> np.ndarray:
        """Relative half-widths for forecasts with ``scale`` (shape (n,))."""
        return self.quantile * np.maximum(np.asarray(scale, dtype=np.float64), MIN_SCALE)


@dataclass(frozen=True)
class Intervals:
    """Relative interval bounds of each forecast, in input order, and the final state."""

    lower: np.ndarray
    upper: np.ndarray
    state: ConformalState


def nonconformity(actual_rel: np.ndarray, forecast_rel: np.ndarray, scale: np.ndarray
                  ) -> np.ndarray:
    """Scores ``|actual_rel - forecast_rel| / max(scale, MIN_SCALE)``, shape (n,)."""
    return np.abs(np.asarray(actual_rel, dtype=np.float64) - np.asarray(forecast_rel, np.float64)) \
        / np.maximum(np.asarray(scale, dtype=np.float64), MIN_SCALE)


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((1 - alpha)(n + 1))``-th smallest of ``scores`` (Lei et al. 2018, eq. 3).

    Returns the largest score when that rank exceeds ``n`` (``alpha`` too small for ``n``
    scores), 0 when ``alpha >= 1``.

    Raises:
        ValueError: ``scores`` is empty.
    """
    if not len(scores):
        raise ValueError("no calibration scores")
    if alpha >= 1:
        return 0.0
    rank = math.ceil((1.0 - alpha) * (len(scores) + 1))
    rank = min(max(rank, 1), len(scores))
    return float(np.partition(np.asarray(scores, dtype=np.float64), rank - 1)[rank - 1])


def adaptive_intervals(
    origin: np.ndarray, forecast_rel: np.ndarray, actual_rel: np.ndarray, scale: np.ndarray,
    horizon: int, seed_target: np.ndarray, seed_scores: np.ndarray, level: float = LEVEL,
    gamma: float = GAMMA, window: int = CALIBRATION_WINDOW,
) -> Intervals:
    """Adaptive conformal intervals for a chronological run of forecasts.

    Args:
        origin: shape (n,), non-decreasing day index of each forecast's origin (its window's
            last day); its target day is ``origin + horizon``.
        forecast_rel: shape (n,), forecasts as ``target / last - 1``.
        actual_rel: shape (n,), the realised ``target / last - 1`` (read only once the target
            day is on or before a later forecast's origin).
        scale: shape (n,), the window volatility of each forecast times ``sqrt(horizon)``.
        horizon: trading days from origin to target (>= 1).
        seed_target: shape (m,), target day index of each initial calibration score.
        seed_scores: shape (m,), initial scores (e.g. the first fold's validation windows),
            all realised by the first origin.
        level: nominal coverage in (0, 1).
        gamma: ACI step size (> 0; 0 gives plain split conformal on a rolling window).
        window: newest realised scores used for the quantile (>= 1).

    Returns:
        :class:`Intervals`: relative lower/upper bounds per forecast and the state after every
        forecast's outcome is known.

    Raises:
        ValueError: lengths differ, ``origin`` decreases, no seed score, or a seed score is
            not realised by the first origin (it would come from the future).
    """
    origin = np.asarray(origin, dtype=np.int64)
    n = len(origin)
    if not (len(forecast_rel) == len(actual_rel) == len(scale) == n):
        raise ValueError("origin, forecast_rel, actual_rel and scale must have the same length")
    if n and (np.diff(origin) < 0).any():
        raise ValueError("origin must be non-decreasing (forecasts in chronological order)")
    if not len(seed_scores):
        raise ValueError("at least one seed score is needed")
    if n and int(np.max(seed_target)) > int(origin[0]):
        raise ValueError(f"a seed score's target day {int(np.max(seed_target))} is after the "
                         f"first forecast's origin {int(origin[0])}")
    alpha = 1.0 - level
    scale = np.maximum(np.asarray(scale, dtype=np.float64), MIN_SCALE)
    forecast_rel = np.asarray(forecast_rel, dtype=np.float64)
    scores = nonconformity(actual_rel, forecast_rel, scale)
    calibration = [float(s) for s in np.asarray(seed_scores, dtype=np.float64)]
    half = np.empty(n)
    missed = np.zeros(n, dtype=bool)
    a_t, realised = alpha, 0
    for i in range(n):
        while realised < i and origin[realised] + horizon <= origin[i]:
            calibration.append(float(scores[realised]))
            a_t += gamma * (alpha - float(missed[realised]))
            realised += 1
        half[i] = conformal_quantile(np.asarray(calibration[-window:]), a_t) * scale[i]
        missed[i] = scores[i] * scale[i] > half[i]
    for j in range(realised, n):  # every outcome is known once the run is over
        calibration.append(float(scores[j]))
        a_t += gamma * (alpha - float(missed[j]))
    recent = np.asarray(calibration[-window:])
    state = ConformalState(a_t, conformal_quantile(recent, a_t), len(recent))
    return Intervals(forecast_rel - half, forecast_rel + half, state)
