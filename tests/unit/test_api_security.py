"""The prediction API's key and body limit, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest

from analytics.registry import Registry
from config.errors import ConfigError
from config.settings import Settings
from tests.conftest import free_port
from tests.model_registry import register_model, write_daily_metrics

KEY = "k3y-for-tests-0123456789"
LIMIT = 4_096
PRICES = [10.0, 10.5, 11.0, 10.8, 11.2, 11.1, 12.0, 12.5, 12.25, 12.4]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("api-security-lake")
    write_daily_metrics(lake, "AAA", PRICES)
    register_model(lake, "AAA", "v1")
    assert Registry(lake).consider("AAA", "v1", datetime.now(UTC))[0]
    return lake


class LogLines(logging.Handler):
    """Every formatted log record of the server's process (all loggers, DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def server(lake: Path) -> Iterator[tuple[str, LogLines]]:
    """uvicorn serving the app with a key and a 4 KiB body limit, its logs captured (the
    access log included); stopped even when a test fails."""
    import uvicorn

    from analytics.api import create_app

    settings = Settings(lake_dir=lake, api_key=KEY, api_max_body_bytes=LIMIT)
    logs = LogLines()
    root = logging.getLogger()
    root.addHandler(logs)
    level = root.level
    root.setLevel(logging.DEBUG)
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                            log_config=None, log_level="debug", access_log=True)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not uv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", logs
    finally:
        uv.should_exit = True
        thread.join(10)
        root.removeHandler(logs)
        root.setLevel(level)


def raw_request(url: str, head: str, body: bytes = b"") -> socket.socket:
    """A socket that sent ``head`` (request line and headers) and ``body``, left open."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode() + b"\r\n\r\n" + body)
    return sock


def status_of(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ")[1])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "api.example.com"])
def test_refuses_to_serve_off_loopback_without_a_key(host: str, lake: Path) -> None:
    from analytics.api import create_app

    with pytest.raises(ConfigError, match="TICKLAKE_API_KEY") as err:
        create_app(Settings(lake_dir=lake, serve_host=host))
    assert repr(host) in str(err.value)
    assert create_app(Settings(lake_dir=lake, serve_host=host, api_key=KEY)) is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_key(host: str, lake: Path) -> None:
    from fastapi.testclient import TestClient

    from analytics.api import create_app

    with TestClient(create_app(Settings(lake_dir=lake, serve_host=host))) as client:
        assert client.get("/health").json()["champions"] == {"AAA": "v1"}


def test_a_short_key_is_refused_naming_the_minimum() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="16"):
        Settings(api_key="short")


def test_the_key_is_required_and_checked(server: tuple[str, LogLines]) -> None:
    url, _ = server
    assert httpx.get(f"{url}/health").status_code == 401
    wrong = httpx.get(f"{url}/health", headers={"X-API-Key": KEY[:-1] + "X"})
    assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
    assert httpx.get(f"{url}/predict/AAA").status_code == 401
    assert httpx.get(f"{url}/metrics").status_code == 401
    ok = httpx.get(f"{url}/health", headers={"X-API-Key": KEY})
    assert ok.status_code == 200 and ok.json()["champions"] == {"AAA": "v1"}
    forecast = httpx.get(f"{url}/predict/AAA", headers={"X-API-Key": KEY}).json()
    assert forecast["ticker"] == "AAA" and forecast["as_of"] is not None
    # the docs stay readable; they declare the key, so Swagger's "Authorize" asks for it
    schema = httpx.get(f"{url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_the_key_is_never_logged(server: tuple[str, LogLines]) -> None:
    url, logs = server
    httpx.get(f"{url}/health", headers={"X-API-Key": KEY})
    httpx.get(f"{url}/health", headers={"X-API-Key": KEY + "-wrong"})
    httpx.post(f"{url}/predict", headers={"X-API-Key": KEY}, json={"ticker": "AAA"})
    text = "\n".join(logs.lines)
    assert '"GET /health HTTP/1.1" 200' in text and '"GET /health HTTP/1.1" 401' in text
    assert '"POST /predict HTTP/1.1" 422' in text
    assert KEY not in text


def test_an_oversized_body_gets_413_before_it_is_sent(server: tuple[str, LogLines]) -> None:
    url, _ = server
    # announces 100 MB and sends none of it: the answer cannot wait for the body
    sock = raw_request(url, f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
                            "Content-Type: application/json\r\nContent-Length: 100000000")
    with sock:
        assert status_of(sock) == 413
    # the same without a key is still 413: the body is refused before anything else
    small = httpx.post(f"{url}/predict", content=b"x" * (LIMIT + 1),
                       headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    assert small.status_code == 413 and str(LIMIT) in small.json()["detail"]


def test_a_chunked_body_is_cut_off_at_the_limit(server: tuple[str, LogLines]) -> None:
    url, _ = server

    def chunks() -> Iterator[bytes]:
        yield b'{"ticker": "AAA", "window": ['
        for _ in range(10_000):  # ~500 KB if it were all read
            yield b'{"avg_price": 10.0, "total_volume": 1.0},'

    response = httpx.post(f"{url}/predict", content=chunks(),
                          headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_body_under_the_limit_is_served(server: tuple[str, LogLines]) -> None:
    url, _ = server
    window = [{"avg_price": 20.0 + i, "total_volume": 1000.0} for i in range(7)]
    body = json.dumps({"ticker": "AAA", "window": window}).encode()
    assert len(body) < LIMIT
    response = httpx.post(f"{url}/predict", content=body,
                          headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["ticker"] == "AAA"


def test_health_answers_while_a_slow_upload_is_open(server: tuple[str, LogLines]) -> None:
    url, _ = server
    # a client that announced 4,000 bytes and sends them a few at a time
    slow = raw_request(url, f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
                            "Content-Type: application/json\r\nContent-Length: 4000",
                       b'{"ticker": "AAA", ')
    big = raw_request(url, f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
                           "Content-Length: 75000000")
    with slow, big:
        for _ in range(3):
            health = httpx.get(f"{url}/health", headers={"X-API-Key": KEY}, timeout=2.0)
            assert health.json()["champions"] == {"AAA": "v1"}
            slow.sendall(b"  ")
        assert status_of(big) == 413
        slow.settimeout(0.2)
        with pytest.raises(TimeoutError):  # still waiting for the rest of its body
            slow.recv(1)
