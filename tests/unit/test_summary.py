"""The `up` summary: which tickers may lack a model (too little history) and which may not."""

from config.settings import Settings
from ticklake.summary import too_short_to_train


def test_only_tickers_too_short_for_the_backtest_may_lack_a_model() -> None:
    """7-day windows, 20% held out in 4 folds, 10% validation, horizons 1 and 5: 20 days
    cannot be backtested, 400 can; 50 days are enough 1 day ahead but not 5 (41 windows with
    a next-day target, 39 with a target 5 days out, which also loses 4 to the gap before the
    first test block); no rows at all is too short as well."""
    skipped = too_short_to_train({"AAA": 20, "BBB": 400, "DDD": 50},
                                 ["AAA", "BBB", "CCC", "DDD"], Settings())
    assert set(skipped) == {"AAA", "CCC", "DDD"}
    assert skipped["AAA"].startswith("20 days, horizon 1:") and "would fit on" in skipped["AAA"]
    assert skipped["CCC"].startswith("0 days, horizon 1:")
    assert skipped["DDD"].startswith("50 days, horizon 5: 39 windows")
    assert too_short_to_train({"DDD": 50}, ["DDD"], Settings(forecast_horizons=(1,))) == {}
