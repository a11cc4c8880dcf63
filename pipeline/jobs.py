"""The registry of streaming jobs, in data-flow order: bronze -> silver -> gold."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from config.errors import ConfigError
from config.settings import Settings
from pipeline import bronze, gold, live, silver
from pipeline.runner import Job
from pipeline.runner import run_jobs as run_job_list

JOBS: dict[str, Job] = {job.name: job for job in (bronze.JOB, silver.JOB, gold.JOB, live.JOB)}
JOB_NAMES = tuple(JOBS)


def resolve(names: Sequence[str]) -> list[Job]:
    """The named jobs in data-flow order.

    Raises:
        ConfigError: no name, or an unknown one (the message lists the allowed names).
    """
    unknown = [n for n in names if n not in JOBS]
    if unknown or not names:
        raise ConfigError(f"unknown job(s) {unknown}; choose from {', '.join(JOB_NAMES)}")
    return [JOBS[n] for n in JOB_NAMES if n in names]


def run_jobs(settings: Settings, names: Sequence[str], until_caught_up: bool = False,
             start_after: Path | None = None) -> None:
    """Run the named jobs in one Spark application (see :func:`pipeline.runner.run_jobs`).

    Raises:
        ConfigError: an unknown job name.
        AlreadyRunning: a job's checkpoint is locked by another process.
        pyspark.errors.StreamingQueryException: a query failed.
    """
    run_job_list(settings, resolve(names), until_caught_up, start_after)
