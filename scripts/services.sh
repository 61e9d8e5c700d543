#!/usr/bin/env bash
# Install (when missing) and start the real services the test suite talks to, or stop the ones
# this script started.  Usage: scripts/services.sh up|down|status
#
#   Postgres   127.0.0.1:5432   Debian postgresql (already running on python-svc machines)
#   Redis      127.0.0.1:6379   Debian redis-server
#   Kafka      127.0.0.1:19092  noida-db (a Kafka-protocol broker shipped in a PyPI wheel)
#   Ceph RGW   127.0.0.1:7480   Debian radosgw on a throw-away single-node memstore cluster
#   Chromium   (not a service)  Debian chromium, which tests/browser drive through Playwright
#                               (Playwright never downloads a browser of its own)
#
# What `up` started is listed in .services/started; `down` stops exactly those. The addresses are
# written to .services/env for the test run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
S="$ROOT/.services"
VENV_BIN="$ROOT/.venv/bin"
KAFKA_PORT=${TEST_KAFKA_PORT:-19092}
RGW_PORT=${TEST_RGW_PORT:-7480}
mkdir -p "$S"
touch "$S/started"

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port, seconds, name
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  log "$3 did not open port $1 within $2 s"
  return 1
}

mark_started() { grep -qx "$1" "$S/started" || echo "$1" >>"$S/started"; }

apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  if [ ! -f "$S/.apt-updated" ]; then
    apt-get update -qq >/dev/null
    touch "$S/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

postgres_up() {
  if ! port_open 5432; then
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
    local version
    version=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting Postgres $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port 5432 30 postgres
    mark_started postgres
  fi
  # Debian's default pg_hba asks for a password on 127.0.0.1; trust-auth machines ignore it.
  if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    log "setting the postgres role's password for TCP logins"
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  fi
}

redis_up() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --pidfile "$S/redis.pid" --logfile "$S/redis.log" --dir "$S"
  wait_port 6379 10 redis
  mark_started redis
}

kafka_up() {
  port_open "$KAFKA_PORT" && return 0
  log "starting the Kafka-protocol broker (noida-db) on $KAFKA_PORT"
  "$VENV_BIN/noida-db" up --only kafka --kafka-port "$KAFKA_PORT" --data-dir "$S/noida" >"$S/noida.log" 2>&1
  wait_port "$KAFKA_PORT" 20 kafka
  mark_started kafka
}

rgw_up() {
  port_open "$RGW_PORT" && return 0
  apt_install radosgw ceph-mon ceph-osd ceph-common
  log "starting Ceph RGW on $RGW_PORT (1 mon + 1 memstore OSD)"
  CEPH_DIR="$S/ceph" RGW_PORT="$RGW_PORT" "$ROOT/scripts/start-ceph-rgw.sh" >"$S/ceph-start.log" 2>&1 || {
    cat "$S/ceph-start.log" >&2
    return 1
  }
  mark_started rgw
}

chromium_install() {
  apt_install chromium
}

write_env() {
  cat >"$S/env" <<ENV
TEST_DB_DSN=postgresql://postgres:postgres@127.0.0.1:5432/torghut
TEST_REDIS_URL=redis://127.0.0.1:6379/15
TEST_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
TEST_S3_ACCESS_KEY=test
TEST_S3_SECRET_KEY=testsecret
ENV
}

stop_one() {
  case "$1" in
  postgres)
    log "stopping Postgres"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main stop || true
    ;;
  redis)
    log "stopping Redis"
    [ -f "$S/redis.pid" ] && kill "$(cat "$S/redis.pid")" 2>/dev/null || true
    ;;
  kafka)
    log "stopping Kafka"
    "$VENV_BIN/noida-db" down --data-dir "$S/noida" >/dev/null 2>&1 || true
    ;;
  rgw)
    log "stopping Ceph RGW"
    local n pid
    for n in client.rgw.a osd.0 mon.a; do
      pid=$(cat "$S/ceph/run/$n.pid" 2>/dev/null || true)
      [ -n "$pid" ] || continue
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    ;;
  esac
}

case "${1:-}" in
up)
  postgres_up
  redis_up
  kafka_up
  rgw_up
  chromium_install
  write_env
  log "ready: $(tr '\n' ' ' <"$S/started")"
  ;;
down)
  tac "$S/started" | while read -r name; do [ -n "$name" ] && stop_one "$name"; done
  : >"$S/started"
  ;;
status)
  for spec in postgres:5432 redis:6379 "kafka:$KAFKA_PORT" "rgw:$RGW_PORT"; do
    if port_open "${spec#*:}"; then echo "${spec%%:*} up"; else echo "${spec%%:*} down"; fi
  done
  ;;
*)
  echo "usage: $0 up|down|status" >&2
  exit 2
  ;;
esac
