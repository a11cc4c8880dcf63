"""The synthetic GBM source."""

from datetime import UTC, datetime, time, timedelta
from itertools import count

import pytest

from config.errors import ConfigError
from producer.sources.synthetic import SyntheticSource


def fixed_clock() -> object:
    ticks = count()
    return lambda: datetime(2026, 1, 5, 14, 30, tzinfo=UTC) + timedelta(seconds=next(ticks))


def test_same_seed_and_clock_give_the_same_ticks() -> None:
    """Seeded: two runs give identical prices, volumes and tick ids."""
    a = list(SyntheticSource(["AAA", "BBB"], seed=3, count=200, clock=fixed_clock()).ticks())
    b = list(SyntheticSource(["AAA", "BBB"], seed=3, count=200, clock=fixed_clock()).ticks())
    c = list(SyntheticSource(["AAA", "BBB"], seed=4, count=200, clock=fixed_clock()).ticks())
    assert a == b and [t.price for t in a] != [t.price for t in c]
    assert len({t.tick_id for t in a}) == 200


def test_prices_stay_positive_and_tickers_alternate() -> None:
    """GBM prices are > 0; tickers are served round-robin with increasing seq."""
    ticks = list(SyntheticSource(["AAA", "BBB", "CCC"], count=3000, sigma=2.0,
                                 clock=fixed_clock()).ticks())
    assert len(ticks) == 3000 and min(t.price for t in ticks) > 0
    assert [t.ticker for t in ticks[:4]] == ["AAA", "BBB", "CCC", "AAA"]
    assert [t.seq for t in ticks] == list(range(3000))


def test_rate_paces_with_the_injected_sleep() -> None:
    """At 10 ticks/s the source asks to sleep ~0.1 s between ticks (no real waiting)."""
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    list(SyntheticSource(["AAA"], rate_per_s=10, count=5, clock=fixed_clock(),
                         sleep=sleep, monotonic=lambda: now[0]).ticks())
    assert slept == pytest.approx([0.1] * 5)


def test_bad_rate_names_the_allowed_range() -> None:
    """A negative rate is refused with the range it must lie in."""
    with pytest.raises(ConfigError, match=r"rate_per_s=-1 is out of range \(0, 1000000\]"):
        SyntheticSource(["AAA"], rate_per_s=-1)


def test_market_clock_stays_inside_the_new_york_session() -> None:
    """Friday 15:59:58 NY steps to 15:59:59, then Monday 09:30; never outside 09:30-16:00."""
    from producer.sources import EXCHANGE_TZ
    from producer.sources.synthetic import MarketClock

    never = lambda: datetime(2030, 1, 1, tzinfo=UTC)  # noqa: E731
    clock = MarketClock(datetime(2026, 1, 2, 20, 59, 58, tzinfo=UTC), step_s=1, now=never)
    assert [clock().isoformat() for _ in range(3)] == [
        "2026-01-02T20:59:58+00:00", "2026-01-02T20:59:59+00:00", "2026-01-05T14:30:00+00:00"]
    clock = MarketClock(datetime(2026, 1, 3, 12, tzinfo=UTC), step_s=37, now=never)
    for _ in range(5000):  # ~2 sessions
        local = clock().astimezone(EXCHANGE_TZ)
        assert local.weekday() < 5 and "09:30" <= local.strftime("%H:%M") < "16:00"


def test_market_clock_never_runs_past_now() -> None:
    """Simulated time is capped at the wall clock, so ticks are never 'future'."""
    from producer.sources.synthetic import MarketClock

    now = datetime(2026, 1, 5, 14, 30, 5, tzinfo=UTC)
    clock = MarketClock(datetime(2026, 1, 5, 14, 30, tzinfo=UTC), step_s=2, now=lambda: now)
    assert [clock().second for _ in range(5)] == [0, 2, 4, 5, 5]


def test_market_clock_skips_exchange_holidays_and_early_closes() -> None:
    """Wed 2025-12-24 closes early at 13:00 New York time and Thu 2025-12-25 is a holiday (NYSE
    2025 calendar): after 12:59:59 the clock jumps to Fri 2025-12-26 09:30 (14:30 UTC)."""
    from producer.sources.synthetic import MarketClock

    never = lambda: datetime(2030, 1, 1, tzinfo=UTC)  # noqa: E731
    clock = MarketClock(datetime(2025, 12, 24, 17, 59, 59, tzinfo=UTC), step_s=1, now=never)
    assert [clock().isoformat() for _ in range(2)] == [
        "2025-12-24T17:59:59+00:00", "2025-12-26T14:30:00+00:00"]


def test_each_ticker_ticks_inside_its_own_market_sessions() -> None:
    """Per-calendar clocks (what ``ticklake produce --source synthetic`` uses): over a weekend,
    BTC-USD (24/7) ticks on Saturday and Sunday, EURUSD=X (24/5) and AAPL (NYSE) never do;
    AAPL stays in 09:30-16:00 New York, VOD.L in London's 08:00-16:30; every tick carries its
    asset class and currency."""
    from zoneinfo import ZoneInfo

    from producer.sources.synthetic import market_clocks

    tickers = ["AAPL", "BTC-USD", "EURUSD=X", "VOD.L"]
    now = datetime(2026, 11, 24, 22, tzinfo=UTC)  # a Tuesday evening
    clocks = market_clocks(tickers, trading_days=5, step_s=60, now=lambda: now)
    assert clocks["AAPL"] is not clocks["BTC-USD"] is not clocks["EURUSD=X"]
    ticks = list(SyntheticSource(tickers, count=4 * 6000, clocks=clocks).ticks())
    by = {t: [x for x in ticks if x.ticker == t] for t in tickers}
    weekend = {t: sum(x.event_time.weekday() >= 5 for x in by[t]) for t in tickers}
    assert weekend["BTC-USD"] > 0 and weekend["EURUSD=X"] == weekend["AAPL"] == 0
    def local(ticker: str, zone: str) -> list[time]:  # a clock that reached now stays there
        return [x.event_time.astimezone(ZoneInfo(zone)).time() for x in by[ticker]
                if x.event_time < now]

    new_york = local("AAPL", "America/New_York")
    assert min(new_york) >= time(9, 30) and max(new_york) < time(16, 0)
    london = local("VOD.L", "Europe/London")
    assert min(london) >= time(8, 0) and max(london) < time(16, 30)
    assert {(x.asset_class, x.currency) for x in by["BTC-USD"]} == {("crypto", "USD")}
    assert {(x.asset_class, x.currency) for x in by["VOD.L"]} == {("equity", "GBX")}
    assert all(x.event_time <= now for x in ticks)
