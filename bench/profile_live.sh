#!/usr/bin/env bash
# Profile the live job under load: bench/live.py --mode live, and WAIT seconds after its start
# py-spy on the job's Python driver (--idle) and on the executors' Python workers
# (--subprocesses on the pyspark.worker daemon), and a Java Flight Recorder recording of the
# JVM, each for SECONDS. Outputs in OUT: driver.txt, workers.txt (py-spy's raw format: one
# stack and its sample count per line), jvm.jfr (`jfr print --events jdk.ExecutionSample`),
# bench.log.
#
#   bash bench/profile_live.sh [OUT] [WAIT] [SECONDS]      # defaults: /tmp/ticklake-profile 140 40
#
# py-spy is not a dependency of ticklake: install it anywhere, e.g.
#   python3 -m venv /tmp/spyenv && /tmp/spyenv/bin/pip install py-spy && export PY_SPY=/tmp/spyenv/bin/py-spy
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/ticklake-profile}
WAIT=${2:-140}
SECONDS_=${3:-40}
PY_SPY=${PY_SPY:-py-spy}
command -v "$PY_SPY" >/dev/null || { echo "profile_live: no py-spy ($PY_SPY); see the comment at the top of this script" >&2; exit 2; }
command -v jcmd >/dev/null || { echo "profile_live: no jcmd (it comes with a JDK: apt-get install openjdk-17-jdk-headless)" >&2; exit 2; }
mkdir -p "$OUT"
.venv/bin/python bench/live.py --lake-ticks 20000 --rate 5000 --minutes 3 --mode live > "$OUT/bench.log" 2>&1 &
bench=$!
trap 'kill "$bench" 2>/dev/null || true' EXIT
sleep "$WAIT"
driver=$(pgrep -f "ticklake job live" | head -1)
jvm=$(pgrep -f "java.*SparkSubmit" | head -1)
# the JVM starts more than one daemon of pyspark.worker; the one that forked the workers
daemons=$(ps -eo pid,ppid,args | awk -v j="$jvm" '$2 == j && /pyspark.daemon pyspark.worker$/ {print $1}')
daemon=$(for d in $daemons; do echo "$(pgrep -c -P "$d" || true) $d"; done | sort -rn | awk 'NR == 1 {print $2}')
echo "profile_live: driver $driver, JVM $jvm, worker daemon $daemon; recording ${SECONDS_} s"
"$PY_SPY" record --idle -d "$SECONDS_" -r 25 -f raw -o "$OUT/driver.txt" -p "$driver" >/dev/null 2>&1 &
"$PY_SPY" record --subprocesses -d "$SECONDS_" -r 25 -f raw -o "$OUT/workers.txt" -p "$daemon" >/dev/null 2>&1 &
jcmd "$jvm" JFR.start duration="${SECONDS_}s" filename="$OUT/jvm.jfr" settings=profile >/dev/null
wait "$bench"
trap - EXIT
wait
echo "profile_live: wrote $OUT/{driver.txt,workers.txt,jvm.jfr,bench.log}"
