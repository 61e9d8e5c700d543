#!/usr/bin/env bash
# `make run`: migrate, create demo data and an admin login, then run web + two Celery workers
# (queues torghut and whitepapers) + beat on the embedded defaults (SQLite, SQLite-backed Celery
# broker, simulated broker, replayed sample signals). Values from the environment or a .env file
# win over the defaults below.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
if [ -f .env ]; then set -a; . ./.env; set +a; fi
export TRADING_ENABLED="${TRADING_ENABLED:-true}"
export TRADING_KILL_SWITCH_ENABLED="${TRADING_KILL_SWITCH_ENABLED:-false}"
export TRADING_SIGNAL_SOURCE="${TRADING_SIGNAL_SOURCE:-replay}"
export TRADING_STATIC_SYMBOLS="${TRADING_STATIC_SYMBOLS:-AAPL,MSFT,NVDA,SPY,TSLA}"
export TRADING_STRATEGY_CONFIG_PATH="${TRADING_STRATEGY_CONFIG_PATH:-config/strategies.sample.yaml}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}"
WEB_PORT="${WEB_PORT:-8181}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"

mkdir -p var
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
$BIN/python manage.py migrate --noinput -v0
$BIN/python manage.py collectstatic --noinput -v0
$BIN/python manage.py bootstrap_demo

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping torghut…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# each process runs under scripts/supervise.sh: one that exits is restarted with a backoff
# (and logged), so a worker that exits when Redis or the database drops never stops the bot
scripts/supervise.sh web $BIN/gunicorn torghut_site.wsgi:application --bind "127.0.0.1:$WEB_PORT" \
  --workers 2 --access-logfile - &
pids+=($!)
scripts/supervise.sh worker $BIN/celery -A torghut_site worker --loglevel INFO --concurrency 2 \
  -Q torghut -n "worker@%h" &
pids+=($!)
# research work has its own queues and worker: a slow or hostile PDF, or a backtest, never delays
# a trade cycle
scripts/supervise.sh whitepapers-worker $BIN/celery -A torghut_site worker --loglevel INFO \
  --concurrency 1 -Q whitepapers,research -n "whitepapers@%h" &
pids+=($!)
scripts/supervise.sh beat $BIN/celery -A torghut_site beat --loglevel INFO &
pids+=($!)

sleep 2
cat <<MSG

  torghut is running (paper trading on the simulated broker, replaying bundled sample data)
    admin      http://127.0.0.1:$WEB_PORT/admin/    (login printed above)
    health     http://127.0.0.1:$WEB_PORT/healthz
    status     http://127.0.0.1:$WEB_PORT/trading/status   (API token printed above)
    API docs   http://127.0.0.1:$WEB_PORT/api/docs/
    metrics    http://127.0.0.1:$WEB_PORT/metrics
  A process that exits is restarted (logged as [supervise]); Ctrl-C stops web, workers and beat.

MSG
wait "${pids[@]}"
