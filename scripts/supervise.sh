#!/usr/bin/env bash
# Run a command until SIGTERM or SIGINT, starting it again 5 s after it exits, with a loud line each time: what
# `make run` does with the log collector, whose absence would otherwise go unnoticed (the archive stops filling).
#   supervise.sh COMMAND [ARGS...]
set -uo pipefail
pid=
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
while :; do
  "$@" &
  pid=$!
  wait "$pid"
  code=$?
  echo "*** $* exited with status $code: the log archive is NOT being filled; restarting in 5 s" >&2
  sleep 5 & pid=$!
  wait "$pid"
done
