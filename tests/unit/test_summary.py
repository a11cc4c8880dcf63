"""The `up` summary: which tickers may lack a model (too little history) and which may not."""

from config.settings import Settings
from ticklake.summary import too_short_to_train


def test_only_tickers_too_short_for_the_backtest_may_lack_a_model() -> None:
    """7-day windows, 20% held out in 4 folds, 10% validation: 20 days cannot be backtested,
    400 can; a ticker with no rows at all is too short as well."""
    skipped = too_short_to_train({"AAA": 20, "BBB": 400}, ["AAA", "BBB", "CCC"], Settings())
    assert set(skipped) == {"AAA", "CCC"}
    assert skipped["AAA"].startswith("20 days:") and "would fit on" in skipped["AAA"]
    assert skipped["CCC"].startswith("0 days:")
