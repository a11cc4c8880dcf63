"""Is a model's forecast error really different from the naive forecast's? The Diebold-Mariano
test with the Harvey-Leybourne-Newbold small-sample correction.

Diebold & Mariano (1995), "Comparing predictive accuracy", *Journal of Business & Economic
Statistics* 13(3); Harvey, Leybourne & Newbold (1997), "Testing the equality of prediction mean
squared errors", *International Journal of Forecasting* 13(2): with squared-error loss
differences ``d_t = e_model,t^2 - e_naive,t^2`` over ``n`` test days and horizon ``h``, the
statistic is ``sqrt((n + 1 - 2h + h(h - 1)/n) / n) * mean(d) / sqrt(V/n)``, where ``V`` sums the
autocovariances of ``d`` up to lag ``h - 1`` (overlapping ``h``-day forecasts are correlated),
compared with Student's t with ``n - 1`` degrees of freedom. The computation is the
``dieboldmariano`` package's (``dm_test``, ``harvey_correction=True``). Where the plain sum of
autocovariances comes out negative (possible for ``h`` > 1), the Bartlett-weighted sum (Newey &
West 1987), which never does, is used instead, as the package's error message advises.

A negative statistic means the model's squared errors are smaller than naive's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dieboldmariano import dm_test
from dieboldmariano.dieboldmariano import (
    InvalidParameterException,
    NegativeVarianceException,
    ZeroVarianceException,
)


@dataclass(frozen=True)
class DieboldMariano:
    """One model against the reference forecast on the same days.

    Attributes:
        statistic: the HLN-corrected DM statistic (< 0: the model's errors are smaller).
        p_value: two-sided p-value (H0: equal expected squared error).
        p_value_better: one-sided p-value of H1 "the model's expected squared error is
            smaller".
        n: days compared.
        variance: ``"acf"`` (autocovariances summed) or ``"bartlett"`` (the fallback).
    """

    statistic: float
    p_value: float
    p_value_better: float
    n: int
    variance: str = "acf"


def diebold_mariano(actual: np.ndarray, forecast: np.ndarray, reference: np.ndarray,
                    horizon: int) -> DieboldMariano | None:
    """Diebold-Mariano test (HLN-corrected) of ``forecast`` against ``reference``.

    Args:
        actual, forecast, reference: shape (n,), prices on the same target days, in order.
        horizon: forecast horizon in days (>= 1): autocovariances up to lag ``horizon - 1``.

    Returns:
        The test, or None when it is undefined: the two forecasts' losses never differ (e.g.
        the reference against itself), or too few days (n <= 2 * horizon).
    """
    actual, forecast, reference = (np.asarray(a, dtype=np.float64).tolist()
                                   for a in (actual, forecast, reference))
    n = len(actual)
    if n <= 2 * horizon:
        return None
    try:
        try:
            statistic, p_value = dm_test(actual, forecast, reference, h=horizon)
            estimator = "acf"
        except NegativeVarianceException:
            estimator = "bartlett"
            statistic, p_value = dm_test(actual, forecast, reference, h=horizon,
                                         variance_estimator="bartlett")
        p_better = p_value / 2 if statistic < 0 else 1 - p_value / 2
    except (ZeroVarianceException, InvalidParameterException, ValueError):
        return None
    if not np.isfinite([statistic, p_value, p_better]).all():
        return None
    return DieboldMariano(float(statistic), float(p_value), float(p_better), n, estimator)
