#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: Debian packages that are missing (Java 17 for Spark and
# the broker, Maven to resolve the jars; with WITH_TEST_TOOLS=1 also chromium for the
# browser test and kcat for the third-party client test), the venv, the pinned pip packages,
# the pinned jars from Maven Central (Apache Kafka's broker, Spark's Kafka source, delta-spark;
# SHA-256 checked: python -m config.jars).
# Fast the second time: pip runs only when pyproject.toml or requirements.lock changed, Maven
# only when a jar is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

apt_packages=()
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || apt_packages+=(maven)
if [ "${WITH_TEST_TOOLS:-0}" = 1 ]; then
  [ -x /usr/bin/chromium ] || apt_packages+=(chromium)
  command -v kcat >/dev/null 2>&1 || apt_packages+=(kcat)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${apt_packages[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}" >/dev/null
fi

if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
  echo "setup: ticklake needs Python 3.11 or 3.12; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  echo "       Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# `make run` needs the runtime packages only; `make test` (WITH_TEST_TOOLS=1) adds the dev
# extras. The stamp holds "<hash of pyproject.toml and the lock> runtime|dev"; a dev venv
# serves `make run` as it is.
kind=runtime; target=.
if [ "${WITH_TEST_TOOLS:-0}" = 1 ]; then kind=dev; target='.[dev]'; fi
stamp="$VENV/.ticklake-installed"
hash=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" != "$hash $kind" ] && [ "$have" != "$hash dev" ]; then
  echo "setup: installing pinned Python packages ($target) into $VENV (first time: several minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c requirements.lock -e "$target"
  echo "$hash $kind" > "$stamp"
fi
# the pinned jars (config/maven/: the Kafka broker, Spark's Kafka source, delta-spark) into
# .jars/, once, and the connectors into pyspark's spark-defaults.conf
"$VENV/bin/python" -m config.jars
# plotly.js' finance bundle for the dashboard's charts (visualization/plotlyjs.py; pinned by
# SHA-256, from the npm registry); without it the dashboard falls back to st.plotly_chart
"$VENV/bin/python" -m visualization.plotlyjs >/dev/null || \
  echo "setup: the dashboard's charts fall back to st.plotly_chart (see the line above)" >&2
