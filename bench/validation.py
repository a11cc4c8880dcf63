"""Silver's column-wise validation (``pipeline.validation.validate_values``) on real ticks:
rows/s for v2 messages (decimal volume, asset class, currency) as the ratio to v1 messages of
the same ticks, measured in the same run.

    .venv/bin/python bench/validation.py [--repeat 5] [--copies 5]

The ticks are bokeh-sampledata's AAPL, IBM and MSFT replayed (13,080 bars, four ticks each),
``--copies`` times over; each line prints the median of ``--repeat`` timed calls. Every row must
come out valid, so the figure is the accepting path Silver takes on a normal morning.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import pyarrow as pa
from common import ROOT  # noqa: F401 (puts the project on sys.path)

from pipeline.validation import validate_values  # noqa: E402
from producer.messages import TickMessage  # noqa: E402
from producer.sources.replay import ReplaySource  # noqa: E402


def as_v1(tick: TickMessage) -> bytes:
    """The same tick as the first release published it (schema version 1)."""
    return tick.model_copy(update={"schema_version": 1}).to_json_bytes()


def rows_per_s(values: pa.Array, repeat: int) -> float:
    now = datetime.now(UTC)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        verdict = validate_values(values, now, 65_536, 300)
        times.append(time.perf_counter() - started)
        assert verdict.column("reason").null_count == len(values), "a tick was rejected"
    return len(values) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per message version")
    parser.add_argument("--copies", type=int, default=5, help="copies of the replayed ticks")
    args = parser.parse_args()
    ticks = list(ReplaySource(["AAPL", "IBM", "MSFT"]).ticks()) * args.copies
    v2 = pa.array([t.to_json_bytes() for t in ticks], pa.binary())
    v1 = pa.array([as_v1(t) for t in ticks], pa.binary())
    rate_v1, rate_v2 = rows_per_s(v1, args.repeat), rows_per_s(v2, args.repeat)
    print(f"validate_values over {len(ticks):,} real ticks (median of {args.repeat}):")
    print(f"  v1 messages  {rate_v1:12,.0f} rows/s")
    print(f"  v2 messages  {rate_v2:12,.0f} rows/s  = {rate_v2 / rate_v1:.2f}x v1")


if __name__ == "__main__":
    main()
