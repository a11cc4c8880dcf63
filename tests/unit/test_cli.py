"""The ticklake command line: help, and clear errors for bad arguments."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.errors import AlreadyRunning
from pipeline.runner import app_id_for, job_lock
from ticklake.cli import app

runner = CliRunner()


def test_help_lists_every_verb() -> None:
    """`ticklake --help` names each verb with a one-line explanation."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("up", "broker", "produce", "job", "train", "status", "dashboard"):
        assert f" {verb} " in result.output


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticklake", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_bad_source_names_the_allowed_values(tmp_path: Path) -> None:
    """--source csv is refused with the allowed sources, exit code 2, no traceback."""
    result = run_cli("produce", "--source", "csv", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: --source 'csv' is not one of replay, synthetic" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_yfinance_backfill_without_a_first_day_is_refused(tmp_path: Path) -> None:
    """Yahoo's history needs a range: no --from exits 2 naming it, before any network call."""
    result = run_cli("backfill", "--source", "yfinance", "--tickers", "BTC-USD", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: backfill --source yfinance needs --from YYYY-MM-DD" in result.stderr
    result = run_cli("backfill", "--source", "kafka", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: --source 'kafka' is not one of replay, yfinance" in result.stderr


def test_bad_bootstrap_servers_names_value_and_format(tmp_path: Path) -> None:
    """A bootstrap address without a port is refused with the expected format."""
    result = run_cli("broker", "status", "--bootstrap-servers", "nohost", cwd=tmp_path)
    assert result.returncode == 2
    assert "'nohost'" in result.stderr and "HOST:PORT" in result.stderr


def test_status_of_an_empty_lake_is_balanced_zero(tmp_path: Path) -> None:
    """`ticklake status --json` on a new lake: every table absent, zero and balanced."""
    import json

    result = run_cli("status", "--json", "--lake", str(tmp_path / "lake"), cwd=tmp_path)
    info = json.loads(result.stdout)
    assert set(info["tables"].values()) == {None}
    assert info["reconciliation"]["bronze"] == 0 and info["reconciliation"]["balanced"]


def test_a_second_job_on_the_same_checkpoint_refuses(tmp_path: Path) -> None:
    """The checkpoint lock refuses a second holder with a message naming job and pid."""
    with job_lock(tmp_path / "bronze", "bronze"):
        with pytest.raises(AlreadyRunning, match=r"job bronze is already running .* \(pid \d+\)"):
            with job_lock(tmp_path / "bronze", "bronze"):
                pass
    with job_lock(tmp_path / "bronze", "bronze"):  # free again once released
        pass


def test_app_id_is_created_once_per_checkpoint(tmp_path: Path) -> None:
    """The Delta app id survives restarts, differs for a new checkpoint and names its job."""
    from pipeline.checkpoints import job_of_app_id

    (tmp_path / "a").mkdir()
    first = app_id_for(tmp_path / "a", "silver")
    assert first.startswith("silver-") and app_id_for(tmp_path / "a", "silver") == first
    assert job_of_app_id(first) == "silver" and job_of_app_id(first + "-x") != "silver"
    (tmp_path / "b").mkdir()
    assert app_id_for(tmp_path / "b", "silver") != first


def registered_verbs() -> list[tuple[list[str], str]]:
    """Every command of the CLI as (argv prefix, first docstring line), groups expanded."""
    from ticklake.cli import app as root

    verbs = []
    for command in root.registered_commands:
        name = command.name or command.callback.__name__
        verbs.append(([name], (command.callback.__doc__ or "").strip().splitlines()[0]))
    for group in root.registered_groups:
        for command in group.typer_instance.registered_commands:
            verbs.append(([group.name, command.name or command.callback.__name__],
                          (command.callback.__doc__ or "").strip().splitlines()[0]))
    return verbs


def test_every_verb_has_help_that_explains_it_and_shows_defaults() -> None:
    """`ticklake VERB --help` exits 0 for every registered verb, shows its one-line summary,
    and every option that names a default shows it (no markup swallowed it)."""
    verbs = registered_verbs()
    assert {" ".join(v) for v, _ in verbs} >= {
        "up", "produce", "watch", "job", "train", "serve", "status", "maintain", "dashboard",
        "broker start", "broker stop", "broker status"}
    for argv, summary in verbs:
        result = runner.invoke(app, [*argv, "--help"])
        assert result.exit_code == 0, argv
        text = " ".join(result.output.replace("│", " ").split())  # unwrap rich's panels
        assert " ".join(summary.split()[:4]) in text, argv
        if "--lake" in text:
            assert "[default: ./lake]" in text, argv
        if "--bootstrap-servers" in text:
            assert "[default: 127.0.0.1:9092]" in text, argv


def test_version_agrees_with_pyproject() -> None:
    """`ticklake --version` prints the package's version, which is pyproject.toml's."""
    import tomllib
    from pathlib import Path

    from typer.testing import CliRunner

    from ticklake import __version__
    from ticklake.cli import app

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == __version__ == "0.2.0"
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"ticklake {__version__}"
