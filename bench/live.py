"""Live benchmark: tick -> gold/bars_1m latency under a sustained load, over a given lake.

For each lake size in ``--lake-ticks``: a new lake is built from that many synthetic ticks
(bronze, silver and gold with ``--until-caught-up``, five tickers), then the three jobs run
as one streaming application (`ticklake job bronze silver gold`) while

* a load of ``--rate`` synthetic ticks/s on five other tickers runs for ``--minutes`` (its
  own process; event time = the wall clock, as a live feed's), and
* a probe ticker gets one tick per second; the bench polls ``gold/bars_1m`` and, for each
  probe tick (its ``seq``), takes the commit time (Delta log) of the first version it is part
  of a bar in: from its send to that commit is the tick -> Gold latency. (Until 2026-11-25 the
  bench took the time its own read of the table returned, which grows with the table's
  versions and files; it prints that figure's p50 too.)

Printed per lake: p50/p99/max latency (and p50/p99 from the load's second minute on); per job
the median micro-batch duration, rows, and what each micro-batch left for later (latest minus
end offset of its source when it started: Kafka records, or Delta versions) at its largest and
at the end; the resident memory of the driver JVM (which holds the executors under local[N]),
of the Python driver and of the executors' Python workers at the start of the load, one minute
in and at its end (growth is counted from the one-minute mark, after the JVM's heap and Spark's
caches warmed up), and the JVM's live heap (:func:`live_heap`; ``jcmd``, the JDK's, forces full
GCs at those three moments only): a JVM's resident size grows toward its heap limit without a
leak, its live heap does not. With two lake sizes, the ratios (larger / smaller) of p50
latency and of each job's median batch duration.

    .venv/bin/python bench/live.py --lake-ticks 20000 5000000 --rate 1000 --minutes 2   # growth
    .venv/bin/python bench/live.py --lake-ticks 20000 --rate 5000 --minutes 10          # live
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
from backlog import run_job
from common import ROOT, bench_lake, publish_backlog
from confluent_kafka import Producer

from config.kafka import client_config
from config.settings import Settings
from config.tables import GOLD_BARS_1M
from producer.messages import SCHEMA_VERSION, TickMessage, make_tick_id
from producer.publisher import publish
from producer.sources.synthetic import SyntheticSource
from storage.delta import open_path
from storage.progress import progress_records

LOAD_TICKERS = ("LOADA", "LOADB", "LOADC", "LOADD", "LOADE")
PROBE = "PROBE"
HEAP_SAMPLES = 3
"""Class histograms per live-heap figure (:func:`live_heap` keeps the smallest)."""


class Probe:
    """One probe tick per second, and a poller that sees each one arrive in gold/bars_1m."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: dict[int, float] = {}
        self.committed: dict[int, float] = {}
        self.read: dict[int, float] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()

    def publish(self, seconds: float) -> None:
        producer = Producer(client_config(self.settings, "producer"))
        seq, started = 0, time.monotonic()
        while not self.stop.is_set() and time.monotonic() - started < seconds:
            now = datetime.now(UTC)
            tick = TickMessage(
                schema_version=SCHEMA_VERSION, ticker=PROBE, event_time=now, price=100.0,
                volume=1, source="probe", seq=seq, asset_class="equity", currency="USD",
                tick_id=make_tick_id("probe", PROBE, now, 100.0, 1, f"probe#{seq}"))
            producer.produce(self.settings.topic, key=PROBE.encode(), value=tick.to_json_bytes())
            producer.flush(5)
            self.sent[seq] = time.time()
            seq += 1
            time.sleep(max(0.0, started + seq - time.monotonic()))

    def poll(self) -> None:
        """Each new version of gold/bars_1m: the probe seqs it holds are stamped with that
        version's commit time (the Delta log's ``commitInfo.timestamp``), so the latency does
        not include how long this poller took to notice; the time it read them is kept too."""
        path = str(GOLD_BARS_1M.path(self.settings.lake_dir))
        last_version = -1
        while not self.stop.is_set():
            time.sleep(0.25)
            try:
                table = open_path(path)
                if table is None or table.version() == last_version:
                    continue
                last_version = table.version()
                commit_s = table.history(1)[0]["timestamp"] / 1000
                read = table.to_pyarrow_dataset().to_table(columns=["ticker", "close_seq"])
                bars = read.filter(pc.equal(read.column("ticker").cast(pa.string()), PROBE))
            except Exception as exc:  # noqa: BLE001 - counted and printed, then polled again
                self.errors.append(repr(exc)[:200])
                continue
            if not bars.num_rows:
                continue
            latest = pc.max(bars.column("close_seq")).as_py()
            now = time.time()
            for seq in range(latest + 1):
                self.committed.setdefault(seq, commit_s)
                self.read.setdefault(seq, now)

    def latencies(self, seen: dict[int, float] | None = None, from_seq: int = 0) -> list[float]:
        """Sorted tick -> gold/bars_1m latencies (to the commit; ``seen=self.read``: to the
        poller's read) of the probe ticks from ``from_seq`` on (one a second: ``from_seq=60``
        leaves out the load's first minute)."""
        seen = self.committed if seen is None else seen
        return sorted(seen[s] - t for s, t in self.sent.items() if s in seen and s >= from_seq)


def p50_p99(ordered: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile (nearest rank below) of sorted values; NaN, NaN
    for none."""
    if not ordered:
        return float("nan"), float("nan")
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def live_load(bootstrap_servers: str, topic: str, rate: float, count: int) -> None:
    """Publish ``count`` synthetic ticks at ``rate``/s on :data:`LOAD_TICKERS`, event time =
    the wall clock (a child process, so the bench's probe threads keep their own core time)."""
    settings = Settings(bootstrap_servers=bootstrap_servers, topic=topic)
    source = SyntheticSource(list(LOAD_TICKERS), seed=7, rate_per_s=rate, count=count)
    publish(source.ticks(), settings, progress=False)


def memory(job: psutil.Process) -> dict[str, float]:
    """Resident MiB of the job's Python driver, of its JVM (driver + local executors) and of
    the executors' Python workers (proportional set size, so the pages the forked workers
    share are counted once), and the JVM's live heap (:func:`live_heap`)."""
    java = [p for p in job.children(recursive=True) if "java" in p.name()]
    workers = [w for p in java for w in p.children(recursive=True) if "python" in w.name()]
    return {"python_mib": job.memory_info().rss / 2**20,
            "jvm_mib": sum(p.memory_info().rss for p in java) / 2**20,
            "workers_mib": sum(_pss(w) for w in workers) / 2**20,
            "heap_mib": sum(live_heap(p.pid) for p in java) if java else float("nan")}


def _pss(process: psutil.Process) -> int:
    """Bytes of ``process``'s proportional set size (0 once it has exited)."""
    try:
        return int(process.memory_full_info().pss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def live_heap(pid: int, samples: int = HEAP_SAMPLES, spacing_s: float = 5.0) -> float:
    """MiB of live objects in the JVM's heap: the smallest total of ``samples`` class
    histograms ``spacing_s`` apart (``jcmd PID GC.class_histogram``, the JDK's: a full GC,
    then it counts what is still reachable, in the same pause). The smallest, because a
    histogram also counts what the running micro-batch holds at that moment (Spark's
    on-heap memory pages, ``long[]``, 0-35 MiB in the live benchmark of 2026-12-03), which a
    leak does not. Until 2026-12-03 the bench ran ``GC.run`` and then ``GC.heap_info``, two
    attaches apart, so its figure also held what the job allocated in between (-7% to +46%
    on the same load). NaN when ``jcmd`` (JDK) is missing."""
    totals = []
    for i in range(samples):
        if i:
            time.sleep(spacing_s)
        try:
            out = subprocess.run(["jcmd", str(pid), "GC.class_histogram"], check=True,
                                 capture_output=True, text=True, timeout=120).stdout
        except (OSError, subprocess.SubprocessError):
            return float("nan")
        total = re.search(r"^Total\s+\d+\s+(\d+)\s*$", out, re.MULTILINE)
        if total:
            totals.append(int(total.group(1)) / 2**20)
    return min(totals) if totals else float("nan")


def _by_partition(offsets: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Spark's Kafka offsets ``{topic: {partition: offset}}`` flattened."""
    return {(t, p): v for t, parts in offsets.items() if isinstance(parts, dict)
            for p, v in parts.items()}


def lag(record: dict[str, Any]) -> int | None:
    """What a micro-batch left for later: latest minus end offset of its source when it
    started (Kafka: records summed over partitions; Delta: table versions)."""
    for source in record["sources"]:
        end, latest = source.get("end_offset"), source.get("latest_offset")
        if isinstance(end, dict) and isinstance(latest, dict):
            if "version" in end and "version" in latest:
                return int(latest["version"]) - int(end["version"])
            e, la = _by_partition(end), _by_partition(latest)
            return sum(max(0, la[k] - e.get(k, 0)) for k in la)
    return None


MODES = {"layers": ("bronze", "silver", "gold"), "live": ("live",)}
"""The streaming queries of each mode: three chained per-layer jobs, or the one live query."""


def run(lake_ticks: int, rate: float, minutes: float, trigger_s: float,
        mode: str) -> dict[str, Any]:
    names = MODES[mode]
    with bench_lake("live", trigger_interval_s=trigger_s) as (settings, work):
        if lake_ticks:
            publish_backlog(settings, lake_ticks)
            for name in names:
                run_job(name, settings, settings.lake_dir, work / f"build-{name}.log")
        log = (work / "live.log").open("ab")
        env_settings = {"TICKLAKE_TRIGGER_INTERVAL_S": str(trigger_s)}
        job = subprocess.Popen(
            [sys.executable, "-m", "ticklake", "job", *names, "--lake",
             str(settings.lake_dir), "--bootstrap-servers", settings.bootstrap_servers],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, **env_settings})
        try:
            deadline = time.monotonic() + 180
            while f"started {names[-1]}".encode() not in (work / "live.log").read_bytes():
                if job.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the streaming jobs did not start; see {work}/live.log")
                time.sleep(1)
            since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            process = psutil.Process(job.pid)
            start_memory = memory(process)
            marks: list[dict[str, float]] = []
            seconds = minutes * 60
            load = multiprocessing.get_context("spawn").Process(
                target=live_load, args=(settings.bootstrap_servers, settings.topic, rate,
                                        int(rate * seconds)), daemon=True)
            load.start()
            probe = Probe(settings)
            poller = threading.Thread(target=probe.poll, daemon=True)
            poller.start()
            sampler = threading.Timer(60, lambda: marks.append(memory(process)))
            sampler.start()
            probe.publish(seconds)
            load.join()
            time.sleep(15)  # let the last probe ticks arrive
            probe.stop.set()
            poller.join()
            end_memory = memory(process)
            sampler.cancel()
        finally:
            job.terminate()
            job.wait(120)
        lake = settings.lake_dir
        jobs = {name: [r for r in progress_records(lake, name) if r["timestamp"] >= since]
                for name in names}
    latencies = probe.latencies()
    p50, p99 = p50_p99(latencies)
    warm_p50, warm_p99 = p50_p99(probe.latencies(from_seq=60))
    return {
        "warm_p50_s": warm_p50, "warm_p99_s": warm_p99,
        "read_p50_s": p50_p99(probe.latencies(probe.read))[0],
        "lake_ticks": lake_ticks, "probes_sent": len(probe.sent), "poll_errors": probe.errors,
        "probes_seen": len(latencies), "p50_s": p50, "p99_s": p99,
        "max_s": latencies[-1] if latencies else float("nan"),
        "jobs": {name: {"batches": len(r),
                        "median_batch_s": statistics.median(
                            [x["batch_duration_ms"] / 1000 for x in r]) if r else float("nan"),
                        "rows": sum(x["rows"] or 0 for x in r),
                        "lags": [x for x in map(lag, r) if x is not None]}
                 for name, r in jobs.items()},
        "memory_start": start_memory, "memory_1min": marks[0] if marks else start_memory,
        "memory_end": end_memory, "work": str(work),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake-ticks", type=int, nargs="+", default=[20_000],
                        help="ticks in the lake before the load (one run per value)")
    parser.add_argument("--rate", type=float, default=1000.0, help="load ticks per second")
    parser.add_argument("--minutes", type=float, default=2.0, help="how long the load runs")
    parser.add_argument("--trigger", type=float, default=Settings().trigger_interval_s,
                        help="processing-time trigger of the jobs, seconds")
    parser.add_argument("--mode", choices=tuple(MODES), default="layers",
                        help="layers: the three per-layer jobs (ticklake job bronze silver "
                        "gold); live: the one live query (ticklake job live)")
    args = parser.parse_args()
    results = [run(n, args.rate, args.minutes, args.trigger, args.mode) for n in args.lake_ticks]
    print(f"\nload: {args.rate:,.0f} ticks/s for {args.minutes:g} min + 1 probe tick/s; "
          f"trigger {args.trigger:g} s; mode {args.mode} ({', '.join(MODES[args.mode])})")
    for r in results:
        print(f"\nlake of {r['lake_ticks']:,} ticks ({r['work']})")
        print(f"  probe ticks: {r['probes_seen']}/{r['probes_sent']} reached gold/bars_1m; "
              f"latency p50 {r['p50_s']:.2f} s, p99 {r['p99_s']:.2f} s, max {r['max_s']:.2f} s "
              f"(to the commit; to this bench's read of it: p50 {r['read_p50_s']:.2f} s)")
        print(f"  the same from the load's second minute on (the first micro-batches also start "
              f"the Python workers): p50 {r['warm_p50_s']:.2f} s, p99 {r['warm_p99_s']:.2f} s")
        if r["poll_errors"]:
            print(f"  {len(r['poll_errors'])} reads of gold/bars_1m failed, first: "
                  f"{r['poll_errors'][0]}")
        for name, j in r["jobs"].items():
            unit = "versions" if name in ("silver", "gold") else "records"
            print(f"  {name:<7} {j['batches']:>5} micro-batches, median {j['median_batch_s']:.2f} s,"
                  f" {j['rows']:,} rows; left for later ({unit}): max {max(j['lags'], default=0)}"
                  f", last {j['lags'][-1] if j['lags'] else 0}")
        for when, label in (("start", "start of the load"), ("1min", "load + 1 min"),
                            ("end", "end of the load")):
            m = r[f"memory_{when}"]
            print(f"  resident memory, {label}: driver JVM (with the local executors) "
                  f"{m['jvm_mib']:,.0f} MiB (live heap {m['heap_mib']:,.0f} MiB), Python driver "
                  f"{m['python_mib']:,.0f} MiB, Python workers {m['workers_mib']:,.0f} MiB")
        growth = {k: r["memory_end"][k] / r["memory_1min"][k] - 1 for k in r["memory_1min"]}
        print(f"  memory growth from load + 1 min to the end: JVM live heap "
              f"{growth['heap_mib']:+.1%}, JVM resident {growth['jvm_mib']:+.1%}, Python "
              f"driver {growth['python_mib']:+.1%}, Python workers {growth['workers_mib']:+.1%}")
    if len(results) == 2:
        small, big = results
        print(f"\nratio lake {big['lake_ticks']:,} / lake {small['lake_ticks']:,}: p50 latency "
              f"{big['p50_s'] / small['p50_s']:.2f}; median batch " + ", ".join(
                  f"{n} {big['jobs'][n]['median_batch_s'] / small['jobs'][n]['median_batch_s']:.2f}"
                  for n in MODES[args.mode]))


if __name__ == "__main__":
    main()
