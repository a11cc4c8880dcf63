"""Progress of long work: a tqdm bar on a terminal, periodic log lines elsewhere.

A bar redrawn with carriage returns is unreadable in a log file or a CI log (each redraw
becomes a line, or a screen of blank lines). :func:`progress` gives a tqdm bar when stderr is a
terminal and otherwise a :class:`LoggedProgress` with the same small interface, which logs one
line every ``interval_s`` seconds and one when it closes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from tqdm import tqdm

LOG_INTERVAL_S = 10.0
"""Seconds between two progress lines when stderr is not a terminal."""


class Progress(Protocol):
    """What ticklake uses of a tqdm bar."""

    n: float
    total: float | None

    def update(self, n: float = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


class LoggedProgress:
    """A progress counter that logs ``desc: n/total unit (postfix)`` at most every
    ``interval_s`` seconds (monotonic clock) and once more when closed."""

    def __init__(self, desc: str, total: float | None, unit: str, logger: logging.Logger,
                 interval_s: float = LOG_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.desc, self.total, self.unit, self.log = desc.strip(), total, unit, logger
        self.interval_s, self.clock = interval_s, clock
        self.n: float = 0
        self.postfix = ""
        self._last = clock()
        self._logged: tuple[float, str] | None = None

    def update(self, n: float = 1) -> None:
        self.n += n
        self._maybe_log()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def refresh(self) -> None:
        self._maybe_log()

    def close(self) -> None:
        self._emit()

    def _maybe_log(self) -> None:
        if self.clock() - self._last >= self.interval_s:
            self._emit()

    def _emit(self) -> None:
        self._last = self.clock()
        if self._logged == (self.n, self.postfix):
            return  # nothing new since the last line
        self._logged = (self.n, self.postfix)
        of = f"/{self.total:,.0f}" if self.total else ""
        extra = f" ({self.postfix})" if self.postfix else ""
        self.log.info("%s: %s%s %s%s", self.desc, f"{self.n:,.0f}", of, self.unit, extra)


def progress(desc: str, total: float | None, unit: str, enabled: bool = True,
             logger: logging.Logger | None = None, **tqdm_options: Any) -> Progress:
    """A tqdm bar on stderr when it is a terminal, else a :class:`LoggedProgress` on
    ``logger`` (default: this module's); disabled (no output) when ``enabled`` is false."""
    if sys.stderr.isatty() or not enabled:
        bar: Progress = tqdm(total=total, desc=desc, unit=unit, disable=not enabled,
                             **tqdm_options)
        return bar
    return LoggedProgress(desc, total, unit, logger or logging.getLogger(__name__))
