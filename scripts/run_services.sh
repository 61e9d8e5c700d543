#!/usr/bin/env bash
# `make run-services`: the production topology on the services `make test` starts (Postgres,
# Redis, the Kafka-protocol broker, Ceph RGW; scripts/services.sh up): web (gunicorn), the trading
# worker, the research worker, beat and the order-feed consumer, the simulated broker publishing
# its trade updates through Kafka. Each process has a name and runs under scripts/supervise.sh;
# Ctrl-C (or SIGTERM to this script) stops them all. The services stay up (`make services-down`).
#
#   scripts/run_services.sh                 bring-up: services, database, migrate, collectstatic,
#                                           bootstrap_demo, kafka_topics ensure, every process
#   scripts/run_services.sh exec CMD ARGS   run one more process in the same environment, e.g.
#                                           scripts/run_services.sh exec .venv/bin/python manage.py \
#                                             run_orderfeed_consumer --name orderfeed-2
#
# Values from the environment or a .env file win over the defaults below (tests/faults/topology.py
# points them at a test database, its own topics and group, a private Redis). Knobs of this script:
#   RUN_SERVICES_DB (torghut_local)        database created on 127.0.0.1:5432 when DB_DSN is unset
#   RUN_SERVICES_REDIS_DB (10)             Redis DBs N (Celery broker), N+1 (cache), N+2 (results)
#   RUN_SERVICES_SKIP_SERVICES (unset)     1: do not run scripts/services.sh up
#   RUN_SERVICES_CONSUMERS (1)             order-feed consumers orderfeed-1..N (≤ the partitions)
#   WEB_PORT (8181)                        gunicorn on 127.0.0.1:WEB_PORT
# TORGHUT_VAR_DIR (var/services) keeps this topology's files apart from `make run`'s var/: the demo
# login, static files, beat's schedule, metrics, and run/<name>.pid (each supervisor's pid).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
PY=$BIN/python
if [ -f .env ]; then set -a; . ./.env; set +a; fi

# -- the environment ----------------------------------------------------------------------------
redis_db=${RUN_SERVICES_REDIS_DB:-10}
export TORGHUT_VAR_DIR="${TORGHUT_VAR_DIR:-$PWD/var/services}"
export DB_DSN="${DB_DSN:-postgresql://postgres:postgres@127.0.0.1:5432/${RUN_SERVICES_DB:-torghut_local}}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/$redis_db}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/$((redis_db + 1))}"
export CELERY_RESULT_BACKEND="${CELERY_RESULT_BACKEND:-redis://127.0.0.1:6379/$((redis_db + 2))}"
# the order feed on Kafka; the simulated broker's updates go through it (orderfeed/simfeed.py)
export TRADING_ORDER_FEED_ENABLED="${TRADING_ORDER_FEED_ENABLED:-true}"
export TRADING_ORDER_FEED_BOOTSTRAP_SERVERS="${TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:-127.0.0.1:${TEST_KAFKA_PORT:-19092}}"
export TRADING_ORDER_FEED_AUTO_OFFSET_RESET="${TRADING_ORDER_FEED_AUTO_OFFSET_RESET:-earliest}"
# research and whitepaper artifacts on Ceph RGW (the bucket is created below when missing)
export WHITEPAPER_CEPH_ENDPOINT="${WHITEPAPER_CEPH_ENDPOINT:-http://127.0.0.1:${TEST_RGW_PORT:-7480}}"
export WHITEPAPER_CEPH_ACCESS_KEY="${WHITEPAPER_CEPH_ACCESS_KEY:-test}"
export WHITEPAPER_CEPH_SECRET_KEY="${WHITEPAPER_CEPH_SECRET_KEY:-testsecret}"
export WHITEPAPER_CEPH_BUCKET="${WHITEPAPER_CEPH_BUCKET:-torghut-local}"
# trading as `make run`: paper, the simulated broker, the bundled sample signals replayed
export TRADING_ENABLED="${TRADING_ENABLED:-true}"
export TRADING_KILL_SWITCH_ENABLED="${TRADING_KILL_SWITCH_ENABLED:-false}"
export TRADING_SIGNAL_SOURCE="${TRADING_SIGNAL_SOURCE:-replay}"
export TRADING_STATIC_SYMBOLS="${TRADING_STATIC_SYMBOLS:-AAPL,MSFT,NVDA,SPY,TSLA}"
export TRADING_STRATEGY_CONFIG_PATH="${TRADING_STRATEGY_CONFIG_PATH:-config/strategies.sample.yaml}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$TORGHUT_VAR_DIR/prometheus}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"
WEB_PORT="${WEB_PORT:-8181}"
CONSUMERS="${RUN_SERVICES_CONSUMERS:-1}"
RUN_DIR="$TORGHUT_VAR_DIR/run"

if [ "${1:-}" = "exec" ]; then
  shift
  exec "$@"
fi

log() { printf '[run-services] %s\n' "$*" >&2; }

# -- services, database, schema, static files, demo login, topics --------------------------------
prepare() {
  if [ "${RUN_SERVICES_SKIP_SERVICES:-}" != "1" ]; then scripts/services.sh up; fi
  mkdir -p "$TORGHUT_VAR_DIR" "$RUN_DIR"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  "$PY" - <<'PY'
import os
from urllib.parse import urlsplit
import psycopg
from psycopg import sql

dsn = urlsplit(os.environ["DB_DSN"].replace("postgresql+psycopg://", "postgresql://"))
name = dsn.path.lstrip("/")
admin = dsn._replace(path="/postgres").geturl()
with psycopg.connect(admin, autocommit=True) as conn:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"[run-services] created database {name}")
PY
  log "migrate"
  "$PY" manage.py migrate --noinput -v0
  log "collectstatic (STATIC_ROOT=$TORGHUT_VAR_DIR/static)"
  "$PY" manage.py collectstatic --noinput -v0
  log "bucket $WHITEPAPER_CEPH_BUCKET"
  "$PY" manage.py shell -v0 -c "
from django.core.files.storage import storages
bucket = storages['artifacts'].bucket
if bucket.creation_date is None:
    bucket.create()
"
  "$PY" manage.py bootstrap_demo
  ensure_topics
}

ensure_topics() {
  log "kafka_topics ensure"
  "$PY" manage.py kafka_topics ensure
}

# -- processes -----------------------------------------------------------------------------------
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  log "stopping torghut…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$RUN_DIR"/*.pid
}

start() {  # name, command...: under scripts/supervise.sh, pid in run/<name>.pid
  local name=$1
  shift
  scripts/supervise.sh "$name" "$@" &
  pids+=($!)
  echo $! >"$RUN_DIR/$name.pid"
}

prepare
trap cleanup INT TERM EXIT
start web "$BIN/gunicorn" torghut_site.wsgi:application --bind "127.0.0.1:$WEB_PORT" \
  --workers 2 --access-logfile -
start trading-worker "$BIN/celery" -A torghut_site worker --loglevel INFO --concurrency 2 \
  -Q torghut -n "trading@%h" --without-mingle --without-gossip
start research-worker "$BIN/celery" -A torghut_site worker --loglevel INFO --concurrency 1 \
  -Q whitepapers,research -n "research@%h" --without-mingle --without-gossip
start beat "$BIN/celery" -A torghut_site beat --loglevel INFO \
  --schedule "$TORGHUT_VAR_DIR/celerybeat-schedule"
for i in $(seq 1 "$CONSUMERS"); do
  start "orderfeed-$i" "$PY" manage.py run_orderfeed_consumer --name "orderfeed-$i"
done

sleep 2
cat <<MSG

  torghut is running the production topology (Postgres ${DB_DSN##*/}, Redis, Kafka
  ${TRADING_ORDER_FEED_BOOTSTRAP_SERVERS}, Ceph RGW): paper trading on the simulated broker, its
  trade updates through the order feed topic
    admin      http://127.0.0.1:$WEB_PORT/admin/    (login printed above; $TORGHUT_VAR_DIR/admin-password.txt)
    health     http://127.0.0.1:$WEB_PORT/healthz   http://127.0.0.1:$WEB_PORT/trading/health
    status     http://127.0.0.1:$WEB_PORT/trading/status   (API token printed above)
    metrics    http://127.0.0.1:$WEB_PORT/metrics
  processes: web, trading-worker (trading@%h), research-worker (research@%h), beat,
  orderfeed-1..$CONSUMERS; one that exits is restarted ([supervise]); Ctrl-C stops them all.

MSG
wait "${pids[@]}"
