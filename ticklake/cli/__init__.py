"""The ``ticklake`` command line: the top floor. It imports every layer; none imports it.

Verbs are defined in :mod:`ticklake.cli.stream` (broker, producer, streaming jobs, the whole
lakehouse) and :mod:`ticklake.cli.lake` (tables, models, services over the lake).
"""

from __future__ import annotations

import typer

from config.runtime import exit_on_error
from ticklake.cli import lake, stream

app = typer.Typer(
    help="ticklake: a real-time market-data lakehouse. Kafka topic -> Spark Structured "
    "Streaming -> Bronze/Silver/Gold Delta tables -> per-ticker LSTM forecasts -> Streamlit. "
    "Settings come from TICKLAKE_* environment variables; flags override them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from ticklake import __version__

        typer.echo(f"ticklake {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(  # noqa: B008  (typer's way of declaring an option)
        False, "--version", callback=_print_version, is_eager=True,
        help="Print ticklake's version and exit.")) -> None:
    """ticklake: Kafka -> Spark -> Delta -> forecasts -> Streamlit."""


app.command()(stream.up)
app.add_typer(stream.broker_app, name="broker")
app.add_typer(stream.cluster_app, name="cluster")
app.command()(stream.produce)
app.command()(stream.backfill)
app.command()(stream.watch)
app.command()(stream.job)
app.command()(lake.train)
app.command()(lake.serve)
app.command()(lake.status)
app.command()(lake.maintain)
app.command()(lake.upgrade)
app.command()(lake.dashboard)
app.command()(lake.alerts)


def main() -> None:
    """Console entry point: ticklake errors become one clear line and exit code 2."""
    exit_on_error(app)


__all__ = ["app", "main"]
