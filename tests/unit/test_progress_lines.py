"""Progress off a terminal: periodic log lines instead of a redrawn bar."""

from __future__ import annotations

import logging

import pytest

from config.progress import LoggedProgress, progress


def test_a_line_every_interval_and_one_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    """25 updates over 25 clock seconds with a 10 s interval: lines at 10 and 20 s and one
    when closed, each with the count, the total, the unit and the stage."""
    now = [0.0]
    caplog.set_level(logging.INFO)
    bar = LoggedProgress("produce", 25, "tick", logging.getLogger("t"), interval_s=10,
                         clock=lambda: now[0])
    for _ in range(25):
        now[0] += 1
        bar.update(1)
    bar.set_postfix_str("fold 2/4")
    bar.close()
    bar.close()  # nothing new: no second closing line
    assert [r.getMessage() for r in caplog.records] == [
        "produce: 10/25 tick", "produce: 20/25 tick", "produce: 25/25 tick (fold 2/4)"]


def test_not_a_terminal_gives_log_lines_and_disabled_gives_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Under pytest stderr is not a terminal: the logged kind; disabled: a silent bar."""
    assert isinstance(progress("x", 3, "tick"), LoggedProgress)
    silent = progress("x", 3, "tick", enabled=False)
    silent.update(3)
    silent.close()
    assert capsys.readouterr().err == ""
