"""Two processes on one checkpoint: the second refuses while the first streams."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from ticklake.broker import ensure_topic
from ticklake.processes import stop_pid, wait_until

pytestmark = [pytest.mark.integration]


def job_command(settings: Settings, lake: Path) -> list[str]:
    return [sys.executable, "-m", "ticklake", "job", "bronze", "--lake", str(lake),
            "--bootstrap-servers", settings.bootstrap_servers]


def test_a_second_process_refuses_a_running_jobs_checkpoint(broker: Settings,
                                                            tmp_path: Path) -> None:
    """While `ticklake job bronze` runs, a second `ticklake job bronze` on the same lake exits
    with code 2 and names the job, the checkpoint and the first process's PID; once the first
    is stopped, the lock is free again."""
    settings = broker.with_overrides(topic="lock.ticks")
    ensure_topic(settings)
    lake = tmp_path / "lake"
    first_log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(job_command(settings, lake), stdout=first_log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    owner = lake / "_checkpoints" / "bronze" / "LOCK.pid"
    try:
        assert wait_until(lambda: owner.exists() and owner.read_text() == str(first.pid), 60)
        second = subprocess.run(job_command(settings, lake), capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2
        assert (f"error: job bronze is already running on checkpoint "
                f"{lake / '_checkpoints' / 'bronze'} (pid {first.pid})") in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first one was not disturbed
    finally:
        stop_pid(first.pid, timeout_s=30)
        first_log.close()
    from pipeline.runner import job_lock

    with job_lock(lake / "_checkpoints" / "bronze", "bronze"):  # free again
        pass
