#!/usr/bin/env bash
# The local cluster's log collectors, as `make run` runs them beside the API: a node collector for each node
# (`tenx-gateway collect --node NAME`, reading that node's pod log files; see `cluster.sh nodes`), each restarted
# after it exits (scripts/supervise.sh). Until SIGTERM or SIGINT.
#
#   collectors.sh TENX_GATEWAY [FIRST_PORT]
#
# Each collector's /healthz and /metrics listen on FIRST_PORT, FIRST_PORT+1, ... (0: none). The GATEWAY_* settings
# come from the environment.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GATEWAY="$1"
PORT="${2:-0}"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 0' TERM INT
while read -r node dir; do
  env GATEWAY_COLLECTOR_POD_LOGS_DIR="$dir" GATEWAY_COLLECTOR_PORT="$PORT" \
    "$HERE/../../scripts/supervise.sh" "$GATEWAY" collect --node "$node" &
  pids+=("$!")
  echo "node collector of $node reads $dir$([ "$PORT" != 0 ] && echo "; health and metrics on port $PORT")"
  [ "$PORT" != 0 ] && PORT=$((PORT + 1))
done < <("$HERE/cluster.sh" nodes)
wait
