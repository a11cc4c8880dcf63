"""Which model serves a ticker's forecast at a horizon: the champion rule.

Among the LSTM and the baselines (:data:`analytics.backtest.MODELS`), scored on the same pooled
walk-forward test days:

1. a model other than naive is *eligible* only if it beats naive significantly: its
   Diebold-Mariano statistic against naive is negative and the one-sided HLN p-value is below
   ``significance`` (:mod:`analytics.significance`; 0.05 by default,
   ``TICKLAKE_CHAMPION_SIGNIFICANCE``);
2. the champion is the eligible model with the lowest RMSE; naive is always eligible, so every
   ticker with enough history gets a forecast, and a model that is better than naive only by
   chance (a skill of +0.001 on noise) does not serve.
"""

from __future__ import annotations

from typing import Any

NAIVE = "naive"


def choose_champion(overall: dict[str, dict[str, Any]], models: tuple[str, ...],
                    significance: float) -> tuple[str, str]:
    """Apply the rule of the module docstring.

    Args:
        overall: per model the pooled metrics, with ``rmse`` and ``dm`` (``{"statistic",
            "p_value_better", ...}`` or None for naive or an undefined test).
        models: candidate model names; must include ``"naive"``.
        significance: the one-sided p-value a model must stay below, in (0, 1).

    Returns:
        ``(model, reason)``: the champion and a sentence saying why.

    Raises:
        ValueError: ``naive`` is not among ``models``.
    """
    if NAIVE not in models:
        raise ValueError(f"the champion rule needs the naive model among {models}")
    eligible, refused = [NAIVE], []
    for model in models:
        if model == NAIVE:
            continue
        dm = overall[model].get("dm")
        if dm and dm["statistic"] < 0 and dm["p_value_better"] < significance:
            eligible.append(model)
        else:
            p = "n/a" if not dm else f"{dm['p_value_better']:.3f}"
            refused.append(f"{model} (p={p})")
    champion = min(eligible, key=lambda m: (overall[m]["rmse"], m != NAIVE))
    if champion == NAIVE:
        return NAIVE, (f"no model beats naive significantly (one-sided Diebold-Mariano p < "
                       f"{significance:g}): " + ", ".join(refused))
    p_value = overall[champion]["dm"]["p_value_better"]
    others = [m for m in eligible if m not in (champion, NAIVE)]
    extra = f"; also significant: {', '.join(others)} (higher RMSE)" if others else ""
    return champion, (f"{champion} has the lowest RMSE of the models that beat naive "
                      f"significantly (one-sided Diebold-Mariano p={p_value:.3g} < "
                      f"{significance:g}){extra}")
