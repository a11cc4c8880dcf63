"""What a ticker is: its asset class and quote currency, from its Yahoo symbol.

Light on purpose (no pandas, no calendars): the tick message (:mod:`producer.messages`) derives
a v1 message's ``asset_class`` and ``currency`` from its ticker with these functions, and Silver
calls them per distinct ticker of a micro-batch. :mod:`config.calendar` maps the same symbols to
their trading calendars.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

AssetClass = Literal["equity", "index", "fx", "crypto", "future"]
"""What a ticker trades, from its Yahoo symbol (:func:`asset_class`)."""
ASSET_CLASSES: tuple[str, ...] = get_args(AssetClass)
"""The asset classes, in the order of :data:`AssetClass`."""
CURRENCY_PATTERN = r"^[A-Z]{3,4}$"
"""A quote currency: an ISO 4217 code (``USD``), a minor-unit code Yahoo uses (``GBX``: pence
sterling), or a 4-letter stablecoin (``USDT``)."""

CRYPTO_PATTERN = r"[A-Z0-9]+-(USD|USDT|USDC|EUR|GBP|JPY|CAD|AUD|BTC|ETH)"
"""A crypto pair's Yahoo symbol, ``BASE-QUOTE`` (matched whole)."""
_CRYPTO = re.compile(CRYPTO_PATTERN)
YAHOO_SUFFIX_MIC = {
    "L": "XLON", "HK": "XHKG", "T": "XTKS", "DE": "XETR", "F": "XFRA", "PA": "XPAR",
    "AS": "XAMS", "MI": "XMIL", "MC": "XMAD", "SW": "XSWX", "TO": "XTSE", "AX": "XASX",
    "KS": "XKRX", "SS": "XSHG", "BO": "XBOM", "NS": "XBOM", "SI": "XSES", "ST": "XSTO",
    "OL": "XOSL", "CO": "XCSE", "HE": "XHEL", "VI": "XWBO", "BR": "XBRU", "LS": "XLIS",
    "IR": "XDUB", "WA": "XWAR", "SA": "BVMF", "MX": "XMEX", "JO": "XJSE", "TW": "XTAI",
    "NZ": "XNZE", "IS": "XIST",
}
"""Yahoo's exchange suffix (``0700.HK``) -> ISO 10383 MIC of its ``exchange_calendars``
calendar. Source: Yahoo's list of exchanges and their suffixes (help.yahoo.com, "Exchanges and
data providers on Yahoo Finance"); ``.NS`` (NSE India) shares the Bombay calendar's holidays.
Any other suffix (``BRK.B``'s share class) is a US listing."""
INDEX_MIC = {"^N225": "XTKS", "^FTSE": "XLON", "^GDAXI": "XETR", "^FCHI": "XPAR",
             "^HSI": "XHKG", "^AXJO": "XASX", "^GSPTSE": "XTSE", "^KS11": "XKRX",
             "^STOXX50E": "XETR", "^SSMI": "XSWX", "^AEX": "XAMS", "^BSESN": "XBOM"}
"""Non-US indices -> the exchange whose sessions they follow; other ``^`` symbols: XNYS."""
US_MIC = "XNYS"
MIC_CURRENCY = {
    US_MIC: "USD", "XLON": "GBX", "XHKG": "HKD", "XTKS": "JPY", "XETR": "EUR", "XFRA": "EUR",
    "XPAR": "EUR", "XAMS": "EUR", "XMIL": "EUR", "XMAD": "EUR", "XSWX": "CHF", "XTSE": "CAD",
    "XASX": "AUD", "XKRX": "KRW", "XSHG": "CNY", "XBOM": "INR", "XSES": "SGD", "XSTO": "SEK",
    "XOSL": "NOK", "XCSE": "DKK", "XHEL": "EUR", "XWBO": "EUR", "XBRU": "EUR", "XLIS": "EUR",
    "XDUB": "EUR", "XWAR": "PLN", "BVMF": "BRL", "XMEX": "MXN", "XJSE": "ZAC", "XTAI": "TWD",
    "XNZE": "NZD", "XIST": "TRY",
}
"""The currency an exchange's shares are quoted in. London and Johannesburg quote in minor
units, as Yahoo reports them: ``GBX`` (pence) and ``ZAC`` (cents); their indices are in the
major unit (``GBP``, ``ZAR``). Source: each exchange's listing rules as summarised by Yahoo's
``currency`` field of the chart API's ``meta``."""
_INDEX_MAJOR_UNIT = {"GBX": "GBP", "ZAC": "ZAR"}
MIC_TZ = {
    US_MIC: "America/New_York", "XLON": "Europe/London", "XHKG": "Asia/Hong_Kong",
    "XTKS": "Asia/Tokyo", "XETR": "Europe/Berlin", "XFRA": "Europe/Berlin",
    "XPAR": "Europe/Paris", "XAMS": "Europe/Amsterdam", "XMIL": "Europe/Rome",
    "XMAD": "Europe/Madrid", "XSWX": "Europe/Zurich", "XTSE": "America/Toronto",
    "XASX": "Australia/Sydney", "XKRX": "Asia/Seoul", "XSHG": "Asia/Shanghai",
    "XBOM": "Asia/Kolkata", "XSES": "Asia/Singapore", "XSTO": "Europe/Stockholm",
    "XOSL": "Europe/Oslo", "XCSE": "Europe/Copenhagen", "XHEL": "Europe/Helsinki",
    "XWBO": "Europe/Vienna", "XBRU": "Europe/Brussels", "XLIS": "Europe/Lisbon",
    "XDUB": "Europe/Dublin", "XWAR": "Europe/Warsaw", "BVMF": "America/Sao_Paulo",
    "XMEX": "America/Mexico_City", "XJSE": "Africa/Johannesburg", "XTAI": "Asia/Taipei",
    "XNZE": "Pacific/Auckland", "XIST": "Europe/Istanbul",
}
"""Each exchange's time zone, as its ``exchange_calendars`` calendar has it
(``tests/unit/test_calendar.py`` checks that they agree)."""
NEW_YORK = MIC_TZ[US_MIC]
FX_ROLL_HOURS = 7
"""FX trade dates roll at 17:00 New York (the market's "New York close", when value dates
move): a trade at 17:00 New York or later belongs to the next day. Source: the FX market
convention used by CLS and the major venues (e.g. CME FX futures settle on it)."""
FUTURES_ROLL_HOURS = 6
"""CME Globex: the session of trade date D opens at 18:00 New York time on the evening before
(``exchange_calendars``' ``us_futures`` calendar)."""


def asset_class(ticker: str) -> AssetClass:
    """The asset class of a Yahoo symbol: ``^`` index, ``=X`` FX, ``=F`` future,
    ``BASE-QUOTE`` with a currency or USDT/USDC/BTC/ETH quote crypto, else equity (``BRK-B``
    stays an equity: ``B`` is no quote currency)."""
    if ticker.startswith("^"):
        return "index"
    if ticker.endswith("=X"):
        return "fx"
    if ticker.endswith("=F"):
        return "future"
    if _CRYPTO.fullmatch(ticker):
        return "crypto"
    return "equity"


def exchange_mic(ticker: str) -> str:
    """The MIC of the exchange an equity or index symbol trades on (:data:`YAHOO_SUFFIX_MIC`,
    :data:`INDEX_MIC`), ``XNYS`` for US listings and every other symbol."""
    if ticker.startswith("^"):
        return INDEX_MIC.get(ticker, US_MIC)
    suffix = ticker.rsplit(".", 1)[1] if "." in ticker else ""
    return YAHOO_SUFFIX_MIC.get(suffix, US_MIC)


def trading_day_rule(ticker: str) -> tuple[str, int]:
    """How an event time becomes ``ticker``'s trade date (the day its daily bar belongs to):
    the date of the event time in time zone ``zone``, plus ``roll_hours``.

    Returns:
        ``(zone, roll_hours)``: an equity or index trades on its exchange's local date
        (:data:`MIC_TZ`, roll 0: ``0700.HK`` -> Asia/Hong_Kong); FX rolls at 17:00 New York
        (:data:`FX_ROLL_HOURS`); futures at 18:00 New York (:data:`FUTURES_ROLL_HOURS`);
        crypto on the UTC date.
    """
    kind = asset_class(ticker)
    if kind == "crypto":
        return "UTC", 0
    if kind == "fx":
        return NEW_YORK, FX_ROLL_HOURS
    if kind == "future":
        return NEW_YORK, FUTURES_ROLL_HOURS
    return MIC_TZ.get(exchange_mic(ticker), NEW_YORK), 0


def trading_date(ticker: str, moment: datetime) -> date:
    """``ticker``'s trade date of the instant ``moment`` (:func:`trading_day_rule`).

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise ValueError("trading_date needs a timezone-aware datetime")
    zone, roll_hours = trading_day_rule(ticker)
    return (moment.astimezone(ZoneInfo(zone)) + timedelta(hours=roll_hours)).date()


def currency(ticker: str) -> str:
    """The currency ``ticker``'s prices are quoted in, from its Yahoo symbol.

    FX ``EURUSD=X`` -> ``USD`` (the quote currency; Yahoo's short form ``JPY=X`` is USD/JPY ->
    ``JPY``); crypto ``BTC-USD`` -> ``USD``; futures (CME, ``GC=F``) -> ``USD``; an equity or
    index -> its exchange's (:data:`MIC_CURRENCY`, e.g. ``0700.HK`` -> ``HKD``, ``VOD.L`` ->
    ``GBX``, ``^FTSE`` -> ``GBP``); ``USD`` for US listings.
    """
    kind = asset_class(ticker)
    if kind == "fx":
        pair = ticker.removesuffix("=X")
        return pair[3:6] if len(pair) >= 6 else pair[:3] or "USD"
    if kind == "crypto":
        return ticker.rsplit("-", 1)[1]
    if kind == "future":
        return "USD"
    quoted = MIC_CURRENCY.get(exchange_mic(ticker), "USD")
    return _INDEX_MAJOR_UNIT.get(quoted, quoted) if kind == "index" else quoted
