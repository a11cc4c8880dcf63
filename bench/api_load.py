"""Prediction API under bounded concurrent load: requests/s and latency, no 5xx.

    .venv/bin/python bench/api_load.py                     # 50 clients, 30 s per endpoint
    .venv/bin/python bench/api_load.py --clients 20 --seconds 10

Serves a throw-away lake (one ticker, a format-2 model version with a Keras LSTM, as in the
tests) with ``ticklake serve`` on a free 127.0.0.1 port and an API key, then runs
``--clients`` concurrent clients (httpx, one connection each) for ``--seconds`` against, in
turn, after one forecast has loaded the model: ``GET /health`` (the reference: no model, no
Gold read), ``GET /predict/AAA`` (reads Gold, runs the champion) and ``POST /predict`` (a
7-day window). Prints requests/s, p50/p99
latency and the status counts per endpoint, and each one's throughput as a ratio of the
reference measured in the same run (this machine is shared: absolute figures drift).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
from common import ROOT, free_port

from analytics.registry import Registry  # noqa: E402
from tests.model_registry import register_model, write_daily_metrics  # noqa: E402
from ticklake.processes import stop_pid, wait_until  # noqa: E402

KEY = "bench-api-load-key-0123456789"
WINDOW = [{"avg_price": 20.0 + i, "total_volume": 1000.0 + i} for i in range(7)]


async def load(url: str, method: str, path: str, body: Any, clients: int,
               seconds: float) -> tuple[list[float], Counter[int]]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY},
                                     timeout=30) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.request(method, path, json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (1-500)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per endpoint (1-600)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 500 or not 1 <= args.seconds <= 600:
        parser.error(f"--clients {args.clients} must be 1-500 and --seconds {args.seconds} 1-600")
    with tempfile.TemporaryDirectory(prefix="ticklake-api-load-") as work:
        lake = Path(work) / "lake"
        write_daily_metrics(lake, "AAA", [10.0 + 0.1 * i for i in range(30)])
        register_model(lake, "AAA", "v1")
        Registry(lake).consider("AAA", "v1", datetime.now(UTC))
        port = free_port()
        env = {**os.environ, "TICKLAKE_API_KEY": KEY}
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "ticklake"), "serve", "--lake", str(lake),
             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            def up() -> bool:
                try:
                    return httpx.get(f"{url}/health", headers={"X-API-Key": KEY}).is_success
                except httpx.TransportError:
                    return False

            if not wait_until(up, 120, 0.5):
                sys.exit("the prediction API did not come up")
            # the first forecast loads the Keras model (seconds); not part of the load
            httpx.get(f"{url}/predict/AAA", headers={"X-API-Key": KEY}, timeout=120)
            print(f"{args.clients} clients x {args.seconds:g} s per endpoint on {url}",
                  flush=True)
            reference = None
            for method, path, body in (("GET", "/health", None), ("GET", "/predict/AAA", None),
                                       ("POST", "/predict", {"ticker": "AAA",
                                                             "window": WINDOW})):
                latencies, statuses = asyncio.run(load(url, method, path, body, args.clients,
                                                       args.seconds))
                rate = len(latencies) / args.seconds
                reference = reference or rate
                q = statistics.quantiles(latencies, n=100)
                errors = sum(n for s, n in statuses.items() if s >= 500)
                print(f"  {method} {path:13s} {rate:8.1f} req/s ({rate / reference:.2f} x "
                      f"/health), p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, "
                      f"statuses {dict(statuses)}, 5xx {errors}", flush=True)
        finally:
            stop_pid(server.pid)


if __name__ == "__main__":
    main()
