"""Two processes on one checkpoint: the second refuses while the first streams."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from pipeline.checkpoints import APP_ID_FILE
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


def test_the_live_query_and_the_per_layer_jobs_refuse_each_others_lake(tmp_path: Path) -> None:
    """A lake kept by the per-layer jobs (bronze's checkpoint holds an app id) is refused by
    `ticklake job live`, and the reverse, with exit code 2 and one line naming the other job,
    its checkpoint and the way out; `live` together with a layer job is refused too. Nothing
    starts Spark: the refusal comes first."""
    lake = tmp_path / "lake"
    checkpoint = lake / "_checkpoints" / "bronze"
    checkpoint.mkdir(parents=True)
    (checkpoint / APP_ID_FILE).write_text("bronze-0123456789abcdef")

    def job(*names: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ticklake", "job", *names, "--lake",
                               str(lake), "--bootstrap-servers", "127.0.0.1:9"],
                              capture_output=True, text=True, timeout=120)

    refused = job("live")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (f"error: job live cannot run on the lake {lake}: job bronze has kept it "
            f"(checkpoint {checkpoint})") in refused.stderr
    assert not (lake / "_checkpoints" / "live").exists()
    (lake / "_checkpoints" / "live").mkdir()
    (lake / "_checkpoints" / "live" / APP_ID_FILE).write_text("live-0123456789abcdef")
    refused = job("gold")
    assert refused.returncode == 2
    assert f"error: job gold cannot run on the lake {lake}: job live has kept it" in refused.stderr
    both = job("live", "silver")
    assert both.returncode == 2
    assert "jobs live and silver keep the same tables two ways" in both.stderr
