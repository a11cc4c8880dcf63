"""What one Delta commit of a sink costs: the floor under "fewer commits per micro-batch".

    .venv/bin/python bench/commit_cost.py                 # 300 commits per table
    .venv/bin/python bench/commit_cost.py --commits 1000

A live micro-batch makes about a dozen commits (Bronze, quarantine, Silver, watermarks, each
Gold table). This commits ``--commits`` times to each of three new ``silver/watermarks``
tables and prints the median milliseconds per commit over the first, middle and last 20:

* :meth:`storage.sink.DeltaSink.append` of a one-row batch (the app-transaction check, then
  delta-rs' ``write_deltalake`` with the (app, batch id) transaction, as the jobs' small
  tables do);
* :meth:`storage.sink.DeltaSink.commit_files` with no file (what the routed writes of Bronze,
  quarantine and Silver commit, on the sink's kept table handle; it records the batch id);
* delta-rs' ``write_deltalake`` of the same row alone (no check, no transaction).

delta-rs writes a checkpoint every 100 versions, so the cost of each is a saw-tooth over the
table's versions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from common import ROOT  # noqa: F401 (puts the project on sys.path)
from deltalake import write_deltalake

from config.tables import SILVER_WATERMARKS
from storage.sink import DeltaSink

WINDOW = 20
"""Commits per printed median."""


def one_row() -> pa.Table:
    """A ``silver/watermarks`` row of nulls (the size of the row does not matter here)."""
    schema = SILVER_WATERMARKS.schema
    return pa.Table.from_pylist([dict.fromkeys(schema.names)], schema=schema)


def timed(commits: int, commit: Callable[[int], object]) -> list[float]:
    """Seconds of each of ``commit(0)``, ``commit(1)``, ... ``commit(commits - 1)``."""
    times = []
    for batch_id in range(commits):
        started = time.perf_counter()
        commit(batch_id)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=300,
                        help=f"commits per table (at least {3 * WINDOW})")
    args = parser.parse_args()
    if args.commits < 3 * WINDOW:
        parser.error(f"--commits {args.commits}: expected at least {3 * WINDOW}")
    with tempfile.TemporaryDirectory(prefix="ticklake-commits-") as work:
        row, plain = one_row(), str(Path(work) / "plain")
        appends = DeltaSink(SILVER_WATERMARKS, Path(work) / "a", "bench")
        files = DeltaSink(SILVER_WATERMARKS, Path(work) / "b", "bench")
        runs = {
            "DeltaSink.append": timed(args.commits, lambda b: appends.append(row, b)),
            "DeltaSink.commit_files": timed(args.commits, lambda b: files.commit_files([], b)),
            "write_deltalake": timed(args.commits, lambda b: write_deltalake(
                plain, row, mode="append")),
        }
    middle = args.commits // 2 - WINDOW // 2
    print(f"median ms per commit ({WINDOW} commits each), on a table of N versions:")
    for name, times in runs.items():
        print(f"  {name:22s} " + ", ".join(
            f"N {lo}-{lo + WINDOW}: {statistics.median(times[lo:lo + WINDOW]) * 1000:.0f}"
            for lo in (0, middle, args.commits - WINDOW)))


if __name__ == "__main__":
    main()
