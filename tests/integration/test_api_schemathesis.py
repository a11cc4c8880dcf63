"""schemathesis (every check: status codes, content types, response schemas, authentication)
against `ticklake serve`, without and with an API key: the OpenAPI document matches what the
server does."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest

from analytics.registry import Registry
from tests.conftest import free_port
from tests.model_registry import register_model, write_daily_metrics
from ticklake.processes import stop_pid, wait_until

pytestmark = [pytest.mark.integration]

KEY = "schemathesis-key-0123456789"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AAA: 30 days in Gold and a serving version with known weights."""
    lake = tmp_path_factory.mktemp("schemathesis") / "lake"
    write_daily_metrics(lake, "AAA", [10.0 + 0.1 * i for i in range(30)])
    register_model(lake, "AAA", "v1")
    assert Registry(lake).consider("AAA", "v1", datetime.now(UTC))[0]
    return lake


@pytest.mark.parametrize("key", [None, KEY], ids=["loopback-without-key", "with-key"])
def test_schemathesis_finds_nothing(lake: Path, tmp_path: Path, key: str | None) -> None:
    """`schemathesis run --checks all` passes: no undocumented status, no response outside its
    schema, no 5xx, and (with a key) nothing served without it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TICKLAKE_API_KEY"}
    if key:
        env["TICKLAKE_API_KEY"] = key
    server = subprocess.Popen(
        [sys.executable, "-m", "ticklake", "serve", "--lake", str(lake), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": key} if key else {}
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/health", headers=headers).is_success
            except httpx.TransportError:
                return False

        assert wait_until(up, 120, 0.5), "ticklake serve did not answer"
        schemathesis = Path(sys.executable).parent / "schemathesis"
        auth = ["-H", f"X-API-Key: {key}"] if key else []
        run = subprocess.run(
            [str(schemathesis), "run", f"{url}/openapi.json", "--checks", "all",
             "--max-examples", "50", "--seed", "20261206", "--no-color", *auth],
            capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
        assert run.returncode == 0, run.stdout[-4000:]
        assert " passed" in run.stdout and "failure" not in run.stdout.lower()
    finally:
        stop_pid(server.pid)
