#!/bin/sh
# torghut container entry point: one image, one process role per container.
#
#   entrypoint.sh <role> [extra args...]      exec the role's process (PID 1 gets SIGTERM)
#   entrypoint.sh <role> --check              print the command it would exec, check that its
#                                             program is on PATH, and exit (dry run, no Django)
#   entrypoint.sh roles                       list the roles
#
# Roles and what they run (see deploy/k8s/ for the matching Kubernetes objects):
#   web                   gunicorn torghut_site.wsgi:application on :$PORT (8181)
#   worker                celery -A torghut_site worker -Q $CELERY_QUEUES (torghut; any number of
#                         replicas); a second Deployment with CELERY_QUEUES=whitepapers,research
#                         and CELERY_CONCURRENCY=1 serves research work (deploy/k8s/worker.yaml)
#   beat                  celery -A torghut_site beat (exactly one)
#   migrate               manage.py migrate --noinput (the release's migration Job)
#   orderfeed-consumer    manage.py run_orderfeed_consumer   (any number <= partitions)
#   signal-consumer       manage.py run_signal_consumer      (TRADING_SIGNAL_SOURCE=kafka)
#   whitepaper-consumer   manage.py run_whitepaper_consumer  (WHITEPAPER_KAFKA_ENABLED=true)
#   trade-updates-stream  manage.py run_trade_updates_stream (exactly one per Alpaca account)
#   manage                manage.py <args>                   (one-off commands)
#
# Tunables (environment): PORT (8181), WEB_CONCURRENCY (gunicorn workers, 4), WEB_TIMEOUT (60),
# CELERY_CONCURRENCY (worker processes, 2), CELERY_QUEUES (torghut), CELERY_BEAT_SCHEDULE_FILE
# (/tmp/celerybeat-schedule). PROMETHEUS_MULTIPROC_DIR, when set, is emptied and created at start.
set -eu

ROLES="web worker beat migrate orderfeed-consumer signal-consumer whitepaper-consumer trade-updates-stream manage"
APP_DIR="${TORGHUT_APP_DIR:-$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)}"
PYTHON="${PYTHON:-python}"

usage() {
  echo "usage: $0 <role> [--check] [args...]; roles: $ROLES" >&2
  exit 64
}

[ $# -ge 1 ] || usage
role="$1"
shift
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi

case "$role" in
  roles)
    echo "$ROLES"
    exit 0
    ;;
  web)
    set -- gunicorn torghut_site.wsgi:application \
      --bind "0.0.0.0:${PORT:-8181}" \
      --workers "${WEB_CONCURRENCY:-4}" \
      --timeout "${WEB_TIMEOUT:-60}" \
      --graceful-timeout 30 \
      --forwarded-allow-ips '*' \
      --access-logfile - \
      --error-logfile - "$@"
    ;;
  worker)
    set -- celery -A torghut_site worker \
      --queues "${CELERY_QUEUES:-torghut}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" \
      --without-mingle --without-gossip \
      --loglevel "${LOG_LEVEL:-info}" "$@"
    ;;
  beat)
    set -- celery -A torghut_site beat \
      --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" \
      --loglevel "${LOG_LEVEL:-info}" "$@"
    ;;
  migrate)
    set -- "$PYTHON" manage.py migrate --noinput "$@"
    ;;
  orderfeed-consumer)
    set -- "$PYTHON" manage.py run_orderfeed_consumer "$@"
    ;;
  signal-consumer)
    set -- "$PYTHON" manage.py run_signal_consumer "$@"
    ;;
  whitepaper-consumer)
    set -- "$PYTHON" manage.py run_whitepaper_consumer "$@"
    ;;
  trade-updates-stream)
    set -- "$PYTHON" manage.py run_trade_updates_stream "$@"
    ;;
  manage)
    [ $# -ge 1 ] || usage
    set -- "$PYTHON" manage.py "$@"
    ;;
  *)
    echo "unknown role: $role" >&2
    usage
    ;;
esac

if [ "$check" -eq 1 ]; then
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "role $role: $1 is not on PATH" >&2
    exit 127
  fi
  echo "$role: (cd $APP_DIR &&) $*"
  exit 0
fi

cd "$APP_DIR"
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  # samples of a previous run's processes would be summed into this one's
  rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}"/*
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
exec "$@"
