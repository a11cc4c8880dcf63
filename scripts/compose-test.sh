#!/usr/bin/env bash
# make compose-test: build the image, bring docker-compose.yml up, replay two real tickers,
# wait until Gold has caught up, check it, check the Spark cluster, the API key and the
# dashboard, then take everything down (also on failure). docs/docker.md explains each step.
#
# Sets up what is missing first (as root, or with sudo): Debian's docker.io, docker-compose and
# debootstrap; starts dockerd when none answers (and stops it again by its PID at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
PROJECT=${COMPOSE_PROJECT:-ticklake-compose-test}
TIMEOUT_S=${COMPOSE_TEST_TIMEOUT_S:-900}
log() { echo "compose-test: $*"; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# BuildKit (for the pip CA secret) needs a client that has it: docker 20.10+ without buildx
# has it built in; a newer client needs the buildx plugin.
DOCKER=docker
if ! docker buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi

started_dockerd=""
if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd (log: /tmp/ticklake-dockerd.log)"
  $SUDO dockerd >/tmp/ticklake-dockerd.log 2>&1 &
  started_dockerd=$!
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
  $DOCKER info >/dev/null 2>&1 || { log "dockerd did not start; see /tmp/ticklake-dockerd.log"; exit 1; }
fi

work=$(mktemp -d /tmp/ticklake-compose-test.XXXXXX)
export COMPOSE_PROJECT_NAME=$PROJECT
export TICKLAKE_API_KEY="compose-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export PUBLISH_HOST=127.0.0.1 PUBLISH_DASHBOARD_PORT=$(free_port) PUBLISH_API_PORT=$(free_port) \
  PUBLISH_SPARK_UI_PORT=$(free_port) TICKLAKE_IMAGE=ticklake:latest
cleanup() {
  status=$?
  if [ $status -ne 0 ]; then
    log "FAILED; the services' last log lines:"
    "${COMPOSE[@]}" logs --tail 40 2>&1 | tail -200 || true
  fi
  log "docker compose down -v"
  "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  if [ -n "$started_dockerd" ]; then log "stopping dockerd (pid $started_dockerd)"; $SUDO kill "$started_dockerd" || true; fi
  exit $status
}
trap cleanup EXIT INT TERM

# 1. the image (a locally made base when no registry answers)
base=python:3.11-slim-bookworm
if ! $DOCKER image inspect "$base" >/dev/null 2>&1 && ! timeout 30 $DOCKER pull -q "$base" >/dev/null 2>&1; then
  log "no image registry answers: building the base with debootstrap (scripts/docker-base.sh)"
  ${SUDO:+$SUDO -E} env DOCKER=$DOCKER PYTHON=${PYTHON:-.venv/bin/python} bash scripts/docker-base.sh
  base=ticklake-base:bookworm
fi
cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || echo /etc/ssl/certs/ca-certificates.crt)}
secret=(); [ -s "$cert" ] && secret=(--secret "id=pip_cert,src=$cert")
log "building ticklake:latest from $base"
started=$(date +%s)
previous=$($DOCKER image inspect -f '{{.Id}}' ticklake:latest 2>/dev/null || true)
DOCKER_BUILDKIT=1 $DOCKER build -q --build-arg "BASE_IMAGE=$base" "${secret[@]}" -t ticklake:latest . >/dev/null
log "image built in $(( $(date +%s) - started )) s"
# Each build leaves the image it replaced behind (4.6 GB) and ~1 GB of build cache: a day of CI
# runs filled the disk. Drop the replaced image and keep the cache under a bound.
current=$($DOCKER image inspect -f '{{.Id}}' ticklake:latest)
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then $DOCKER rmi "$previous" >/dev/null 2>&1 || true; fi
$DOCKER builder prune -f --keep-storage 4gb >/dev/null 2>&1 || true

# 2. up: broker, Spark master + 2 workers, streaming (Bronze/Silver/Gold), producer, trainer, dashboard, API
"${COMPOSE[@]}" config -q
log "docker compose up -d (tickers from .env: $(grep ^TICKLAKE_TICKERS .env | cut -d= -f2))"
"${COMPOSE[@]}" up -d
started=$(date +%s)

# 3. the cluster: two ALIVE workers, the streaming application RUNNING
master="http://127.0.0.1:$PUBLISH_SPARK_UI_PORT/json/"
for _ in $(seq 120); do
  curl -sf "$master" > "$work/master.json" && python3 - "$work/master.json" <<'PY' && break
import json, sys
m = json.load(open(sys.argv[1]))
alive = [w for w in m["workers"] if w["state"] == "ALIVE"]
apps = [a for a in m["activeapps"] if a["state"] == "RUNNING"]
sys.exit(0 if len(alive) == 2 and apps else 1)
PY
  sleep 2
done
python3 - "$work/master.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
alive = [w["id"] for w in m["workers"] if w["state"] == "ALIVE"]
apps = [(a["name"], a["state"], a["cores"]) for a in m["activeapps"]]
print(f"compose-test: Spark master {m['url']}: {len(alive)} ALIVE workers {alive}; "
      f"applications {apps}")
assert len(alive) == 2, "expected two ALIVE workers"
assert any(state == "RUNNING" for _, state, _ in apps), "the streaming application is not running"
PY

# 4. the producer replays the tickers; then Gold must catch up and equal the source bars
wait_for() {  # wait_for DESCRIPTION COMMAND...
  local what=$1; shift
  until "$@"; do
    if [ $(( $(date +%s) - started )) -gt "$TIMEOUT_S" ]; then log "timed out waiting for $what"; return 1; fi
    sleep 5
  done
}
producer_done() { [ "$($DOCKER inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$("${COMPOSE[@]}" ps -q producer)")" = "exited 0" ]; }
wait_for "the producer" producer_done
log "producer: $("${COMPOSE[@]}" logs --no-color producer | grep -o '{"produced".*' | tail -1)"
verify() { "${COMPOSE[@]}" exec -T api python -m ticklake.verify >/dev/null 2>&1; }
wait_for "gold/bars_1d to equal the source bars" verify
log "Gold caught up $(( $(date +%s) - started )) s after compose up: $("${COMPOSE[@]}" exec -T api python -m ticklake.verify)"
# the one application on the master runs the three queries (pipeline/streaming.py)
queries=$("${COMPOSE[@]}" logs --no-color streaming | grep -oE 'started (bronze|silver|gold) \(query [0-9a-f-]+' | sort -u || true)
[ "$(echo "$queries" | grep -c started)" = 3 ] || { log "streaming queries: $queries"; exit 1; }
log "one application, three queries: $(echo "$queries" | sed -E 's/started ([a-z]+) \(query /\1 /' | paste -sd, -)"

# 5. the API answers with the key and refuses without it; the dashboard answers
api="http://127.0.0.1:$PUBLISH_API_PORT"
code=$(curl -s -o /dev/null -w '%{http_code}' "$api/health")
[ "$code" = 401 ] || { log "GET /health without the key: $code, expected 401"; exit 1; }
health=$(curl -sf -H "X-API-Key: $TICKLAKE_API_KEY" "$api/health")
log "GET /health without the key: 401; with it: $health"
dash=$(curl -sf "http://127.0.0.1:$PUBLISH_DASHBOARD_PORT/_stcore/health")
[ "$dash" = ok ] || { log "dashboard health: $dash"; exit 1; }
log "dashboard: $dash; streaming still running: $("${COMPOSE[@]}" ps --services --filter status=running | tr '\n' ' ')"
log "PASSED in $(( $(date +%s) - started )) s"
