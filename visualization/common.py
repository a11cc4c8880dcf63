"""What every dashboard page shares: the lake, settings, clock, theme, live refresh and reads
cached on the Delta table version."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from config.location import lake_location
from config.settings import Settings, load_settings
from config.tables import Table
from visualization import data


@dataclass(frozen=True)
class Context:
    """The lake the dashboard reads, its settings, the clock (UTC) and the theme."""

    lake: Path
    settings: Settings
    now: datetime
    theme: str


def lake_dir(settings: Settings) -> Path:
    """``--lake DIR|s3://BUCKET/PREFIX`` after ``--`` on the ``streamlit run`` line, else the
    setting."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--lake")
    args, _ = parser.parse_known_args()
    return lake_location(args.lake or settings.lake_dir)


def context() -> Context:
    """The page's context. The clock is the wall clock unless a test injected one as
    ``st.session_state["now"]`` (UTC)."""
    settings = load_settings()
    now: datetime = st.session_state.get("now") or datetime.now(UTC)
    return Context(lake_dir(settings), settings, now, st.session_state.get("theme", "light"))


@st.cache_data(max_entries=256, show_spinner=False)
def _cached(name: str, lake: str, versions: tuple[int, ...], args: tuple[Any, ...]) -> Any:
    return getattr(data, name)(lake_location(lake), *args)


def cached(name: str, ctx: Context, tables: tuple[Table, ...], *args: Any) -> Any:
    """``visualization.data.<name>(lake, *args)``, recomputed only when one of ``tables`` has
    a new Delta version (the versions are part of the cache key)."""
    versions = tuple(data.table_version(t, ctx.lake) for t in tables)
    return _cached(name, str(ctx.lake), versions, args)


def live(render: Callable[[Context], None]) -> None:
    """Run ``render`` in a fragment that re-runs every ``dashboard_refresh_s`` seconds while
    the sidebar's auto-refresh is on (only that fragment re-runs, and cached reads are redone
    only for tables with a new version)."""
    ctx = context()
    every = ctx.settings.dashboard_refresh_s if st.session_state.get("auto_refresh", True) \
        else None

    @st.fragment(run_every=every)
    def body() -> None:
        render(context())

    body()


def table(frame: pd.DataFrame, **kwargs: Any) -> None:
    """A full-width data frame without its index."""
    st.dataframe(frame, width="stretch", hide_index=True, **kwargs)
