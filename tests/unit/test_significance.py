"""The Diebold-Mariano test against the formula of Harvey, Leybourne & Newbold (1997), and the
champion rule built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analytics.champion import choose_champion
from analytics.significance import diebold_mariano

MODELS = ("lstm", "naive", "sma", "linear")


def hln(actual: np.ndarray, f1: np.ndarray, f2: np.ndarray, h: int) -> tuple[float, float]:
    """HLN (1997) eq. 5 from its definition: d = e1^2 - e2^2, V = gamma_0 + 2 sum_{k<h}
    gamma_k (autocovariances with divisor n), statistic sqrt((n+1-2h+h(h-1)/n)/n) x
    mean(d) / sqrt(V / n), two-sided p from Student's t with n - 1 degrees of freedom."""
    d = (actual - f1) ** 2 - (actual - f2) ** 2
    n, mean = len(d), d.mean()
    gamma = [np.sum((d[k:] - mean) * (d[:n - k] - mean)) / n for k in range(h)]
    v = gamma[0] + 2 * sum(gamma[1:])
    stat = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n) * mean / math.sqrt(v / n)
    return stat, 2 * stats.t.sf(abs(stat), n - 1)


@pytest.mark.parametrize("h", [1, 5])
def test_the_statistic_and_p_value_follow_the_hln_formula(h: int) -> None:
    rng = np.random.default_rng(h)
    actual = 100 + rng.normal(0, 1, 400).cumsum()
    naive = np.concatenate([[100.0], actual[:-1]])
    model = naive + rng.normal(0, 0.3, 400) + 0.2 * (actual - naive)
    test = diebold_mariano(actual, model, naive, h)
    stat, p = hln(actual, model, naive, h)
    assert test is not None and test.n == 400 and test.variance == "acf"
    assert test.statistic == pytest.approx(stat, rel=1e-9)
    assert test.p_value == pytest.approx(p, rel=1e-6)
    expected_better = p / 2 if stat < 0 else 1 - p / 2
    assert test.p_value_better == pytest.approx(expected_better, rel=1e-6)


def test_a_clearly_better_model_is_significant_and_a_copy_is_undefined() -> None:
    rng = np.random.default_rng(9)
    actual = 50 + rng.normal(0, 1, 300).cumsum()
    naive = np.concatenate([[50.0], actual[:-1]])
    good = actual + rng.normal(0, 0.2, 300)
    test = diebold_mariano(actual, good, naive, 1)
    assert test is not None and test.statistic < 0 and test.p_value_better < 1e-6
    worse = diebold_mariano(actual, naive + rng.normal(0, 2, 300), naive, 1)
    assert worse is not None and worse.statistic > 0 and worse.p_value_better > 0.99
    assert diebold_mariano(actual, naive, naive, 1) is None  # no loss difference at all
    assert diebold_mariano(actual[:6], good[:6], naive[:6], 5) is None  # too few days


def overall(rmse: dict[str, float], p_better: dict[str, float]) -> dict[str, dict]:
    return {m: {"rmse": rmse[m],
                "dm": None if m == "naive" else {"statistic": -1.0 if p_better[m] < 0.5 else 1.0,
                                                 "p_value_better": p_better[m]}}
            for m in MODELS}


def test_champion_is_the_lowest_rmse_among_significant_models_and_naive() -> None:
    rmse = {"lstm": 0.98, "naive": 1.0, "sma": 1.5, "linear": 0.97}
    # linear has the lowest RMSE but is not significant: the LSTM serves
    model, why = choose_champion(overall(rmse, {"lstm": 0.01, "sma": 1.0, "linear": 0.2}),
                                 MODELS, 0.05)
    assert model == "lstm" and "p=0.01" in why
    # both significant: the lower RMSE wins
    model, why = choose_champion(overall(rmse, {"lstm": 0.01, "sma": 1.0, "linear": 0.03}),
                                 MODELS, 0.05)
    assert model == "linear" and "also significant: lstm" in why
    # nothing significant: naive, and the reason lists each refused model's p-value
    model, why = choose_champion(overall(rmse, {"lstm": 0.3, "sma": 1.0, "linear": 0.2}),
                                 MODELS, 0.05)
    assert model == "naive" and "lstm (p=0.300)" in why
    # a stricter level refuses a model a looser one accepts
    assert choose_champion(overall(rmse, {"lstm": 0.03, "sma": 1.0, "linear": 0.5}),
                           MODELS, 0.01)[0] == "naive"
    with pytest.raises(ValueError, match="naive"):
        choose_champion(overall(rmse, {"lstm": 0.03, "sma": 1.0, "linear": 0.5}),
                        ("lstm", "linear"), 0.05)
