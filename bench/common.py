"""What the benchmarks share: a throw-away broker and lake, and fast synthetic backlogs.

    with bench_lake("backlog") as (settings, work):
        publish_backlog(settings, 500_000)

The broker is Apache Kafka on a free 127.0.0.1 port (stopped by its PID when the block ends, even on
an error); the lake and run directories live in a new temporary directory that is kept, so a
run can be inspected afterwards (its path is printed).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config.settings import Settings  # noqa: E402
from producer.publisher import PublishReport, publish  # noqa: E402
from producer.sources.synthetic import MarketClock, SyntheticSource  # noqa: E402
from ticklake.broker import EmbeddedBroker, ensure_topic  # noqa: E402
from ticklake.processes import free_port  # noqa: E402,F401  (the benchmarks' import)

DEFAULT_TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")
"""Synthetic tickers of the benchmarks (not in the replayed sample data)."""


@contextmanager
def bench_lake(name: str, **overrides: Any) -> Iterator[tuple[Settings, Path]]:
    """A running embedded broker with the tick topic, and settings whose lake is new.

    Args:
        name: prefix of the temporary work directory.
        overrides: further :class:`~config.settings.Settings` fields.

    Yields:
        ``(settings, work_dir)``.
    """
    work = Path(tempfile.mkdtemp(prefix=f"ticklake-{name}-"))
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=work / "run",
                        lake_dir=work / "lake", **overrides)
    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        ensure_topic(settings)
        yield settings, work
    finally:
        broker.stop()


def synthetic_backlog(
    count: int, tickers: Sequence[str] = DEFAULT_TICKERS, seed: int = 42, step_s: float = 0.01,
    trading_days_back: int = 5,
) -> SyntheticSource:
    """``count`` synthetic ticks, round-robin over ``tickers``, ``step_s`` session seconds apart,
    starting ``trading_days_back`` sessions ago (so none is in the future)."""
    clock = MarketClock.days_back(trading_days_back, step_s=step_s)
    return SyntheticSource(list(tickers), seed=seed, count=count, clock=clock)


def rows_per_s(records: Sequence[dict[str, Any]]) -> float:
    """Rows per second of trigger execution over progress records
    (:func:`storage.progress.progress_record`); 0.0 for none."""
    seconds = sum(r["batch_duration_ms"] for r in records) / 1000
    return sum(r["rows"] for r in records) / seconds if seconds else 0.0


def publish_backlog(settings: Settings, count: int, **source: Any) -> tuple[PublishReport, float]:
    """Publish a :func:`synthetic_backlog` of ``count`` ticks; returns the report and msg/s."""
    started = time.monotonic()
    report = publish(synthetic_backlog(count, **source).ticks(), settings, total=count)
    return report, report.produced / (time.monotonic() - started)
