"""The live yfinance source against answers in Yahoo's chart-API layout (tests/data).

yfinance itself parses every answer: only its HTTP call (``YfData.get``) is replaced, by one
that returns the recorded JSON, raises Yahoo's rate-limit error, or hangs.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.errors import SourceError
from config.settings import Settings
from producer.sources.yahoo import YahooSource, YahooUnavailable

DATA = Path(__file__).resolve().parent.parent / "data"
CHART = json.loads((DATA / "yahoo_chart_AAPL_1m.json").read_text())
EMPTY = json.loads((DATA / "yahoo_chart_AAPL_1m_empty.json").read_text())
QUOTE = CHART["chart"]["result"][0]["indicators"]["quote"][0]
STARTS = CHART["chart"]["result"][0]["timestamp"]
AT_1435_30 = datetime(2026, 11, 23, 14, 35, 30, tzinfo=UTC)  # the 14:35 bar is still forming


class Response:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc, self.status_code, self.text = doc, 200, json.dumps(doc)

    def json(self) -> dict[str, Any]:
        return json.loads(self.text)  # a fresh copy: yfinance edits the parsed answer


@pytest.fixture
def yahoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Answers of Yahoo's chart API, in order (the last one repeats): a JSON document, an
    exception to raise, or a number of seconds to hang."""
    answers: list[Any] = []

    def get(_self: object, url: str, params: object = None, timeout: float = 30) -> Response:
        assert "/v8/finance/chart/" in url
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, float):
            time.sleep(answer)
        return Response(answer if isinstance(answer, dict) else CHART)

    monkeypatch.setattr("yfinance.data.YfData.get", get)
    yield answers


def bar_of(ticks: list[Any]) -> tuple[float, float, float, float, int]:
    ordered = sorted(ticks, key=lambda t: (t.event_time, t.seq))
    prices = [t.price for t in ordered]
    return prices[0], max(prices), min(prices), prices[-1], sum(t.volume for t in ordered)


def source(clock: datetime = AT_1435_30, **kwargs: Any) -> YahooSource:
    return YahooSource(["AAPL"], "1m", poll_s=60, deadline_s=kwargs.pop("deadline_s", 5.0),
                       clock=lambda: clock, max_polls=kwargs.pop("max_polls", 1),
                       sleep=lambda _s: None, **kwargs)


def test_a_session_becomes_ticks_of_the_completed_bars_only(yahoo: list[Any]) -> None:
    yahoo.append(CHART)
    ticks = list(source().ticks())
    assert len(ticks) == 5 * 4 and {t.ticker for t in ticks} == {"AAPL"}
    assert {t.source for t in ticks} == {"yfinance"}
    for i, start in enumerate(STARTS[:5]):
        own = [t for t in ticks if start <= t.event_time.timestamp() < start + 60]
        assert bar_of(own) == (QUOTE["open"][i], QUOTE["high"][i], QUOTE["low"][i],
                               QUOTE["close"][i], QUOTE["volume"][i])
    assert max(t.event_time for t in ticks) < datetime.fromtimestamp(STARTS[5], UTC)
    assert len({t.tick_id for t in ticks}) == 20


def test_re_polling_publishes_each_bar_once_with_stable_ids(yahoo: list[Any]) -> None:
    yahoo.append(CHART)
    times = iter([datetime(2026, 11, 23, 14, 36, 5, tzinfo=UTC)])
    now = [AT_1435_30]
    live = YahooSource(["AAPL"], "1m", poll_s=60, deadline_s=5, max_polls=2,
                       clock=lambda: now[0], sleep=lambda _s: now.__setitem__(0, next(times)))
    ticks = list(live.ticks())
    assert len(ticks) == 6 * 4  # five bars, then only the bar that completed since
    assert len({t.tick_id for t in ticks}) == 24
    assert [t.event_time.minute for t in ticks[-4:]] == [35, 35, 35, 35]
    # a restarted source re-publishes the same bars with the same ids (Silver's duplicates)
    again = list(source(datetime(2026, 11, 23, 14, 36, 5, tzinfo=UTC)).ticks())
    assert [t.tick_id for t in again] == [t.tick_id for t in ticks]


def test_an_empty_answer_publishes_nothing_and_says_so(
        yahoo: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    yahoo.append(EMPTY)
    caplog.set_level(logging.INFO, logger="producer.sources.yahoo")
    assert list(source().ticks()) == []
    assert "AAPL: no 1m bars yet" in caplog.text


def test_a_rate_limit_is_waited_out_and_logged(
        yahoo: list[Any], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from yfinance.exceptions import YFRateLimitError

    monkeypatch.setattr("producer.sources.yahoo.RATE_LIMIT_WAIT_S", 0.25)
    yahoo.extend([YFRateLimitError(), CHART])
    caplog.set_level(logging.WARNING, logger="producer.sources.yahoo")
    ticks = list(source().ticks())
    assert len(ticks) == 20
    failures = [r.getMessage() for r in caplog.records]
    assert failures == ["yfinance AAPL: attempt 1 failed (YFRateLimitError: Too Many Requests. "
                        "Rate limited. Try after a while.); retrying in 0.2 s"]


def test_a_hang_hits_the_deadline_and_names_the_problem(yahoo: list[Any]) -> None:
    yahoo.append(30.0)  # the host answers nothing for 30 s
    started = time.monotonic()
    with pytest.raises(YahooUnavailable, match=r"AAPL within 1 s .*TimeoutError"):
        list(source(deadline_s=1.0).ticks())
    assert time.monotonic() - started < 10  # the deadline, not the 30 s hang


def test_unreachable_yahoo_falls_back_to_synthetic_when_asked(
        yahoo: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    from producer.sources.factory import build_source

    yahoo.append(ConnectionError("Could not resolve host: query2.finance.yahoo.com"))
    settings = Settings(yahoo_fallback="synthetic", yahoo_deadline_s=1.0)
    caplog.set_level(logging.WARNING)
    fallback = build_source(settings, "yfinance", [], ["AAPL", "EURUSD=X"], None, 8)
    assert fallback.name == "synthetic"
    assert getattr(fallback, "rate_per_s", None) == 50.0  # paced like a feed, no --rate given
    ticks = [t for _, t in zip(range(8), fallback.ticks(), strict=False)]
    assert len(ticks) == 8 and {t.ticker for t in ticks} <= {"AAPL", "EURUSD=X"}
    assert caplog.text.count("publishing the fallback source instead") == 1


@pytest.mark.parametrize("verb", [["produce"], ["up", "--no-dashboard", "--no-api"]])
def test_the_verbs_exit_non_zero_with_one_line_when_yahoo_is_unreachable(
        verb: list[str], yahoo: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """As ``ticklake produce`` / ``ticklake up`` run (``ticklake.cli.main``); no broker is
    needed to find out: the first poll comes before the broker and the topic."""
    from config.runtime import exit_on_error
    from ticklake.cli import app

    yahoo.append(ConnectionError("Could not resolve host: query2.finance.yahoo.com"))
    monkeypatch.setenv("TICKLAKE_YAHOO_DEADLINE_S", "1")
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(tmp_path / "lake"))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(SystemExit) as exited:
            exit_on_error(lambda: app([*verb, "--source", "yfinance", "--tickers", "AAPL",
                                       "--bootstrap-servers", "127.0.0.1:1"],
                                      standalone_mode=False))
    finally:  # ticklake up installs its own
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert exited.value.code == 2
    assert not (tmp_path / "lake").exists()  # nothing started, nothing written
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("error:")]
    assert len(errors) == 1 and "Yahoo Finance gave no bars for AAPL" in errors[0]
    assert "Could not resolve host" in errors[0]


BTC_DAILY = json.loads((DATA / "yahoo_chart_BTC-USD_1d.json").read_text())


def test_a_yfinance_backfill_gives_the_bars_and_ids_of_the_same_csv(yahoo: list[Any]) -> None:
    """``backfill --source yfinance``: Yahoo's daily BTC-USD answer (parsed by yfinance) gives
    the same bars as the same 10 days in yf.download's CSV layout, weekend included, and the
    same tick ids, so history already sent from one is a duplicate from the other."""
    from datetime import date

    from producer.sources.replay import ReplaySource, load_csv_bars
    from producer.sources.yahoo import backfill_bars

    yahoo.append(BTC_DAILY)
    bars = backfill_bars(["BTC-USD"], "1d", date(2024, 3, 1), date(2024, 3, 10), deadline_s=5)
    csv = load_csv_bars(DATA / "yf_download_BTC-USD.csv")
    columns = ["ticker", "day", "start", "seconds", "open", "high", "low", "close", "volume"]
    assert len(bars) == 10 and bars["day"].iloc[5] == date(2024, 3, 6)
    assert bars[columns].to_dict("records") == csv[columns].to_dict("records")
    from_yahoo = list(ReplaySource([], backfill=True, bars=bars).ticks())
    from_csv = list(ReplaySource([], [DATA / "yf_download_BTC-USD.csv"], backfill=True).ticks())
    assert [t.tick_id for t in from_yahoo] == [t.tick_id for t in from_csv]
    assert {(t.source, t.asset_class, t.currency) for t in from_yahoo} == {
        ("backfill", "crypto", "USD")}


def test_a_yfinance_backfill_names_the_ticker_yahoo_did_not_answer_for(yahoo: list[Any]) -> None:
    from datetime import date

    from producer.sources.yahoo import backfill_bars

    yahoo.append(ConnectionError("Could not resolve host: query2.finance.yahoo.com"))
    started = time.monotonic()
    with pytest.raises(YahooUnavailable, match=r"1d bars of BTC-USD within 1 s .*resolve host"):
        backfill_bars(["BTC-USD"], "1d", date(2024, 3, 1), date(2024, 3, 10), deadline_s=1)
    assert time.monotonic() - started < 10
    with pytest.raises(SourceError, match="is after --to"):
        backfill_bars(["BTC-USD"], "1d", date(2024, 3, 2), date(2024, 3, 1), deadline_s=1)
    with pytest.raises(SourceError, match="'3d' is not one of 1d, 1m"):
        backfill_bars(["BTC-USD"], "3d", date(2024, 3, 1), date(2024, 3, 2), deadline_s=1)
