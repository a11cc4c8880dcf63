"""`ticklake up --until-caught-up` as a user runs it: real processes, nothing left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = Path(__file__).resolve().parents[1] / "data"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_until_caught_up_on_a_yfinance_csv(tmp_path: Path) -> None:
    """A yf.download CSV (MSFT, 60 days) goes through broker, jobs, training, dashboard and
    prediction API; the last line is a JSON summary with every check true; broker, dashboard
    and API are stopped."""
    broker_port, dashboard_port, api_port = free_port(), free_port(), free_port()
    env = {**os.environ, "TICKLAKE_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker_port}",
           "TICKLAKE_DASHBOARD_PORT": str(dashboard_port), "TICKLAKE_EPOCHS": "2",
           "TICKLAKE_SERVE_PORT": str(api_port),
           "TICKLAKE_RUN_DIR": str(tmp_path / "run")}
    result = subprocess.run(
        [sys.executable, "-m", "ticklake", "up", "--until-caught-up", "--lake",
         str(tmp_path / "lake"), "--csv", str(DATA / "yf_download_MSFT.csv")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] and all(summary["checks"].values())
    assert summary["produced"] == 240 and summary["tables"]["bronze.ticks"] == 240
    assert summary["bars_round_trip"]["tickers"]["MSFT"]["equal"] == 60
    assert summary["reconciliation"]["balanced"]
    assert set(summary["models"]) == {"MSFT"}
    assert summary["dashboard"]["healthy"] is True and summary["api"]["healthy"] is True
    assert summary["checks"]["services_healthy"] is True
    model = summary["models"]["MSFT"]
    assert model["serving"] == model["version"] and set(model["horizons"]) == {"1", "5"}
    for entry in model["horizons"].values():
        assert set(entry["walk_forward_rmse"]) == {"lstm", "naive", "sma", "linear"}
        assert entry["champion"] in entry["walk_forward_rmse"]
    assert summary["tables"]["gold.predictions"] == 2  # one forecast per horizon
    assert not any(listening(p) for p in (broker_port, dashboard_port, api_port))
    assert not list((tmp_path / "run").glob("*.pid"))


def test_up_refuses_an_unbounded_until_caught_up(tmp_path: Path) -> None:
    """Synthetic without --count never catches up: refused before anything starts."""
    result = subprocess.run(
        [sys.executable, "-m", "ticklake", "up", "--until-caught-up", "--source", "synthetic",
         "--lake", str(tmp_path / "lake")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "needs a finite source" in result.stderr


def test_sigterm_to_a_live_up_stops_everything_it_started(tmp_path: Path) -> None:
    """A live `ticklake up` (synthetic source) started in the background gets SIGTERM once
    its API answers: it exits 0 and no process it started is left (broker, jobs and their JVM,
    dashboard, API)."""
    import time

    import psutil

    broker_port, dashboard_port, api_port = free_port(), free_port(), free_port()
    env = {**os.environ, "TICKLAKE_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker_port}",
           "TICKLAKE_DASHBOARD_PORT": str(dashboard_port), "TICKLAKE_SERVE_PORT": str(api_port),
           "TICKLAKE_RUN_DIR": str(tmp_path / "run")}
    up = subprocess.Popen(
        [sys.executable, "-m", "ticklake", "up", "--source", "synthetic", "--rate", "20",
         "--lake", str(tmp_path / "lake")],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while not listening(api_port) and time.monotonic() < deadline:
            assert up.poll() is None, up.stdout.read().decode()[-3000:] if up.stdout else ""
            time.sleep(1)
        assert listening(api_port), "the API did not come up"
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 4  # broker, dashboard, API, jobs (+ the JVM)
        up.terminate()
        out, _ = up.communicate(timeout=120)
        assert up.returncode == 0, out.decode()[-3000:]
        assert "stopping" in out.decode()
        left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not left, [c.cmdline()[:3] for c in left]
        assert not any(listening(p) for p in (broker_port, dashboard_port, api_port))
    finally:  # whatever happened, nothing outlives the test
        if up.poll() is None:
            up.kill()
        for process in children:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
