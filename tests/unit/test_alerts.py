"""Alerts posted to a local HTTP receiver: each once, across restarts, retried on 5xx."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest

from config.settings import Settings
from config.tables import GOLD_ANOMALIES
from storage.sink import DeltaSink
from tests import small_lake
from visualization.alerts import SentLog, check_alerts

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
"""Three days after the small lake's last ingestion: stalled."""


class Receiver:
    """A webhook receiver on 127.0.0.1: records each JSON body; answers 500 to the first
    ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests += 1
                if receiver.requests <= receiver.fail_first:
                    self.send_response(500)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    try:
        yield r
    finally:
        r.stop()


def test_each_alert_is_delivered_exactly_once_across_a_restart(
        lake: Path, receiver: Receiver) -> None:
    small_lake.build(lake)
    settings = Settings(lake_dir=lake, alert_webhook_url=receiver.url)
    delivered = check_alerts(settings, lake, NOW)
    # two anomaly flags and the stalled ingestion; the first POST got a 500 and was retried
    assert receiver.requests == 4 and len(receiver.bodies) == 3
    kinds = [b["alert"]["kind"] for b in receiver.bodies]
    assert kinds == ["anomaly", "anomaly", "stalled"] and len(delivered) == 3
    assert receiver.bodies[0]["text"].startswith("AAA: volume anomaly on 2012-01-07, z = +5.0")
    assert "ingestion stalled" in receiver.bodies[2]["text"]
    # a restart (a new process reads the sent log): nothing is posted again
    assert check_alerts(settings, lake, NOW + timedelta(minutes=5)) == []
    assert len(receiver.bodies) == 3 and len(SentLog(lake).keys) == 3
    # a new flag: exactly that one
    DeltaSink(GOLD_ANOMALIES, lake, "test").append(pa.Table.from_pylist([{
        "ticker": "AAA", "window_start": datetime(2012, 1, 30, tzinfo=UTC), "metric": "log_return",
        "value": -0.2, "window_mean": 0.0, "window_std": 0.01, "z_score": -20.0}],
        GOLD_ANOMALIES.schema), None)
    [new] = check_alerts(settings, lake, NOW + timedelta(minutes=10))
    assert new.kind == "anomaly" and "log_return" in new.key
    assert [b["alert"]["metric"] for b in receiver.bodies[3:]] == ["log_return"]


def test_an_unreachable_receiver_loses_nothing(lake: Path, receiver: Receiver) -> None:
    """Nothing listening: nothing is recorded; the next check, with the receiver up, delivers
    every alert."""
    small_lake.build(lake)
    down = Settings(lake_dir=lake, alert_webhook_url="http://127.0.0.1:9/hook")
    assert check_alerts(down, lake, NOW) == [] and not SentLog(lake).keys
    up = Settings(lake_dir=lake, alert_webhook_url=receiver.url)
    assert len(check_alerts(up, lake, NOW)) == 3 and len(receiver.bodies) == 3


def test_a_flood_is_summed_up_in_one_alert(lake: Path, receiver: Receiver) -> None:
    small_lake.build(lake)
    settings = Settings(lake_dir=lake, alert_webhook_url=receiver.url, alert_max_per_check=1)
    delivered = check_alerts(settings, lake, NOW)
    assert [a.kind for a in delivered] == ["anomaly", "summary"]
    assert receiver.bodies[1]["alert"]["count"] == 2 and "2 more alerts" in receiver.bodies[1]["text"]
    assert len(SentLog(lake).keys) == 3  # the summed-up ones count as sent
    assert check_alerts(settings, lake, NOW) == []
