"""Which query failures count as an unreachable S3 endpoint, and the back-off budget."""

from __future__ import annotations

import threading

import pytest

from config.settings import Settings
from pipeline.runner import OutageBudget, storage_unreachable

DELTA_RS = ("OSError: Kernel error -> Generic S3 error\n  Error performing list request\n"
            "  Error performing GET http://127.0.0.1:57979/b?list-type=2 in 2.25s, after 10 "
            "retries, max_retries 10, retry_timeout 180s - HTTP error\n  error sending request\n"
            "  client error (Connect)\n  tcp connect error")
"""delta-rs' failure when the endpoint refused connections (a 2026-12-08 outage test)."""
S3FS = ("aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host "
        "127.0.0.1:40123 ssl:default [Connect call failed ('127.0.0.1', 40123)]")
S3A = ("org.apache.hadoop.fs.s3a.AWSClientIOException: getFileStatus on s3://b/k: "
       "software.amazon.awssdk.core.exception.SdkClientException: Unable to execute HTTP "
       "request: Connect to 127.0.0.1:40123 failed: Connection refused")


@pytest.mark.parametrize("text", [DELTA_RS, S3FS, S3A])
def test_connection_failures_of_every_client_are_outages(text: str) -> None:
    assert storage_unreachable(RuntimeError(f"[FOREACH_BATCH_USER_FUNCTION_ERROR] {text}"))


@pytest.mark.parametrize("text", [
    "AnalysisException: [DELTA_TABLE_NOT_FOUND] s3://b/lake/bronze/ticks",
    "ValueError: Target schema's field names are not matching the table's field names",
    "AccessDeniedException: s3://b/k: No AWS Credentials provided",
])
def test_data_code_and_credential_errors_are_not(text: str) -> None:
    assert not storage_unreachable(RuntimeError(text))


def test_backoff_doubles_to_30_s_until_the_outage_outlasts_the_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits 2, 4, 8, 16, 30 s... while the outage (from its first failure) stays within
    TICKLAKE_STORAGE_OUTAGE_S, then gives up; a recovered micro-batch starts over; a local
    lake and other errors never wait."""
    clock = [1000.0]
    waits: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(float(timeout or 0))
            clock[0] += float(timeout or 0)
            return False

    monkeypatch.setattr("pipeline.runner.time.monotonic", lambda: clock[0])
    budget = OutageBudget(Settings(lake_dir="s3://b/lake", storage_outage_s=100))
    outage, stop = RuntimeError(DELTA_RS), Stop()
    while budget.wait("gold", outage, stop):
        pass
    assert waits == [2, 4, 8, 16, 30, 30]  # 90 s; one more 30 s wait would pass 100 s
    budget.recovered()
    assert budget.wait("gold", outage, stop) and waits[-1] == 2
    assert not budget.wait("gold", RuntimeError("ValueError: bad row"), stop)
    local = OutageBudget(Settings(lake_dir="lake", storage_outage_s=100))
    assert not local.wait("gold", outage, stop)
    with pytest.raises(ValueError):
        Settings(storage_outage_s=-1)
