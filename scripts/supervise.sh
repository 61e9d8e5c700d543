#!/usr/bin/env bash
# Keep one process of `make run` running: restart it whenever it exits, with a capped exponential
# backoff, and log each restart. SIGTERM/SIGINT stop the process and this supervisor.
#   scripts/supervise.sh NAME COMMAND [ARGS...]
# SUPERVISE_BACKOFF_INITIAL (s, default 1) doubles after each quick exit up to
# SUPERVISE_BACKOFF_MAX (s, default 30); a run that lasted SUPERVISE_STABLE_SECONDS (default 60)
# resets it.
set -uo pipefail
name=$1
shift
initial=${SUPERVISE_BACKOFF_INITIAL:-1}
max=${SUPERVISE_BACKOFF_MAX:-30}
stable=${SUPERVISE_STABLE_SECONDS:-60}
backoff=$initial
child=""
stopping=0

log() { printf '[supervise] %s %s\n' "$name" "$*" >&2; }

stop() {
  stopping=1
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi
}
trap stop TERM INT

while [ "$stopping" -eq 0 ]; do
  started=$SECONDS
  "$@" &
  child=$!
  wait "$child"
  rc=$?
  # a signal interrupts `wait` before the child is gone: wait for it to finish
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  child=""
  [ "$stopping" -eq 1 ] && break
  ran=$((SECONDS - started))
  if [ "$ran" -ge "$stable" ]; then backoff=$initial; fi
  log "exited with status $rc after ${ran}s; restarting in ${backoff}s"
  sleep "$backoff" &
  wait $! 2>/dev/null
  backoff=$(awk -v b="$backoff" -v m="$max" 'BEGIN { b *= 2; if (b > m) b = m; print b }')
done
log "stopped"
