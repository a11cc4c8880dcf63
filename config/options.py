"""Command-line options that override settings, defined once for every entry point
(``ticklake`` and ``spark-submit pipeline/<job>.py``). Each names its setting's default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Lake = Annotated[str | None, typer.Option(
    "--lake", help="The lake: a local folder or s3://BUCKET/PREFIX (endpoint and credentials "
    "from the AWS_* variables) \\[default: ./lake].")]
Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap-servers", help="Kafka HOST:PORT[,HOST:PORT] "
                 "\\[default: 127.0.0.1:9092]."),
]
Tickers = Annotated[
    str | None,
    typer.Option("--tickers", help="Comma-separated symbols \\[default: AAPL,IBM,MSFT,GOOG,FB]."),
]
UntilCaughtUp = Annotated[bool, typer.Option(
    "--until-caught-up", help="Process what is available now (Trigger.AvailableNow), then "
    "exit.")]
StartAfter = Annotated[Path | None, typer.Option(
    "--start-after", metavar="FILE", help="Start up (Spark, or the trainer's TensorFlow "
    "processes, at nice +10), then wait until FILE exists before reading anything; "
    "`ticklake up` uses it to start the jobs while it publishes and the trainer while the "
    "jobs run.")]
Host = Annotated[str | None, typer.Option("--host", help="Bind address \\[default: 127.0.0.1].")]


def split_tickers(value: str | None) -> list[str] | None:
    """``"AAPL, MSFT"`` -> ``["AAPL", "MSFT"]``; None or empty -> None."""
    return [t for t in value.replace(" ", ",").split(",") if t] if value else None
