#!/usr/bin/env bash
# Kueue (job queueing) for the local cluster: its manager as a host process beside the control plane.
#
#   kueue.sh build    build the manager from its Go module (KUEUE_VERSION in ../versions.env) into .local/kueue/bin,
#                     unless the one there was built from this version and Go already
#   kueue.sh up       build, make its webhook certificate, apply its CRDs, start the manager (if it is not running
#                     with this binary and configuration), apply its webhook configurations and the gateway's
#                     ClusterQueue and ResourceFlavor (deploy/components/kueue/queues.yaml); idempotent
#   kueue.sh down     stop the manager and remove its webhook configurations (the CRDs and queues stay)
#   kueue.sh status   say whether it runs, and the ClusterQueues
#
# The apiserver is a host process too, so nothing here has a Service: the webhooks (admission and the CRDs'
# conversion) are `url: https://127.0.0.1:$KUEUE_WEBHOOK_PORT/...` with a CA made here (manifests.py rewrites
# upstream's manifests so), and Kueue's own certificate manager is off. The manager reads the admin kubeconfig
# (.local/kubeconfig). State lives under <repo>/.local/kueue (git-ignored). See deploy/local/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=../versions.env
. "$HERE/../versions.env"
VERSION="$KUEUE_VERSION"
LOCAL="${TENX_LOCAL_DIR:-$ROOT/.local}"
STATE="$LOCAL/kueue"
BIN="$STATE/bin/kueue"
PKI="$STATE/pki"
CERTS="$STATE/certs"          # the webhook server's tls.crt and tls.key
MANIFESTS="$STATE/manifests"  # crds.yaml, webhooks.yaml: what manifests.py wrote
CONFIG="$STATE/config.yaml"
LOGS="$STATE/logs"
RUN="$STATE/run"
PIDFILE="$RUN/kueue.pid"
KUBECONFIG_FILE="$LOCAL/kubeconfig"
KUBECTL="$LOCAL/bin/kubectl"
WEBHOOK_PORT="${KUEUE_WEBHOOK_PORT:-18443}"
HEALTH_PORT="${KUEUE_HEALTH_PORT:-18081}"
QUEUES="$ROOT/deploy/components/kueue/queues.yaml"
READY_TIMEOUT="${KUEUE_READY_TIMEOUT:-120}"
MODULE="sigs.k8s.io/kueue"

log() { printf '[kueue] %s\n' "$*" >&2; }
die() { printf '[kueue] ERROR: %s\n' "$*" >&2; exit 1; }
kubectl_() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=30s "$@"; }
python_() { if [[ -x $ROOT/.venv/bin/python ]]; then "$ROOT/.venv/bin/python" "$@"; else python3 "$@"; fi; }

ldflags() { echo "-s -w -X $MODULE/pkg/version.GitVersion=$VERSION -X $MODULE/pkg/version.GitCommit=$VERSION"; }
build_hash() { { echo "$VERSION"; go version; ldflags; } | sha256sum | cut -c1-16; }

build() {
  command -v go >/dev/null || die "the Go toolchain is needed to build Kueue $VERSION"
  local want; want="$(build_hash)"
  if [[ -x $BIN && -f $BIN.stamp && $(cat "$BIN.stamp") == "$want" ]]; then
    return 0
  fi
  local started=$SECONDS tmp
  log "building the Kueue $VERSION manager from its Go module (cold Go caches: ~15 minutes on 2 cores; warm: ~1)"
  mkdir -p "$STATE/bin"
  tmp="$(mktemp -d "$STATE/bin/.build.XXXXXX")"
  # outside any module, so that the build takes exactly the versions Kueue's own go.mod pins
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$(ldflags)" "$MODULE/cmd/kueue@$VERSION") \
    || { rm -rf "$tmp"; die "building Kueue $VERSION failed"; }
  if [[ -f $BIN ]] && cmp -s "$tmp/kueue" "$BIN"; then rm -f "$tmp/kueue"; else mv -f "$tmp/kueue" "$BIN"; fi
  rm -rf "$tmp"
  echo "$want" >"$BIN.stamp"
  log "built in $((SECONDS - started)) s"
}

# The module's source (CRDs and webhook manifests), from the Go module cache
source_dir() {
  local dir
  dir="$(cd "$STATE" && GOFLAGS= go mod download -json "$MODULE@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -n $dir && -d $dir/config ]] || die "cannot find Kueue $VERSION's source in the Go module cache"
  echo "$dir"
}

pki() {
  mkdir -p "$PKI" "$CERTS"
  chmod 700 "$PKI"
  if [[ ! -f $PKI/ca.key || ! -f $PKI/ca.crt ]]; then
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 -sha256 \
      -subj "/CN=tenx-local-kueue-webhook-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    rm -f "$CERTS/tls.crt" "$CERTS/tls.key"
  fi
  if [[ ! -f $CERTS/tls.crt || ! -f $CERTS/tls.key ]]; then
    local ext; ext="$(mktemp)"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$ext"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$CERTS/tls.key" -subj "/CN=127.0.0.1" -out "$PKI/tls.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/tls.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 -sha256 \
      -extfile "$ext" -out "$CERTS/tls.crt" 2>/dev/null
    rm -f "$ext" "$PKI/tls.csr"
    chmod 600 "$CERTS/tls.key"
  fi
}

# Upstream's config/components/manager/controller_manager_config.yaml, for one manager on loopback: no leader
# election, no metrics or visibility listener, batch/v1 Jobs only, certificates from kueue.sh, and admission fair
# sharing (the gateway's ClusterQueue orders its tenants' LocalQueues by their recent usage; docs/architecture.md, "Queueing").
write_config() {
  cat >"$CONFIG.new" <<EOF
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: 127.0.0.1:$HEALTH_PORT
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: $WEBHOOK_PORT
  certDir: $CERTS
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
clientConnection:
  qps: 50
  burst: 100
manageJobsWithoutQueueName: false
integrations:
  frameworks:
  - batch/job
featureGates:
  VisibilityOnDemand: false
admissionFairSharing:
  usageHalfLifeTime: 15m
  usageSamplingInterval: 30s
EOF
  mv -f "$CONFIG.new" "$CONFIG"
}

# Kueue reads a metrics certificate from a fixed path whenever its own certificate manager is off, and exits without
# one, even with the metrics listener off (cmd/kueue/main.go): the webhook pair is put there. The one thing this
# script writes outside .local/.
METRICS_CERTS=/etc/kueue/metrics/certs
metrics_certs() {
  if [[ -f $METRICS_CERTS/tls.crt ]] && cmp -s "$CERTS/tls.crt" "$METRICS_CERTS/tls.crt"; then return 0; fi
  mkdir -p "$METRICS_CERTS" 2>/dev/null && install -m 600 "$CERTS/tls.crt" "$CERTS/tls.key" "$METRICS_CERTS/" \
    || die "cannot write $METRICS_CERTS (Kueue insists on a certificate there): run as root, or create it"
}

# What the running manager was started with: a different one is restarted
signature() { { stat -c '%s %Y' "$BIN"; cat "$CONFIG" "$CERTS/tls.crt"; } | sha256sum | cut -c1-16; }

# A checkout whose .local is a link to another's (a git worktree) shares that checkout's manager, as cluster.sh
# shares its cluster: it may start one that is not running, never stop or restart one that is.
borrowed() { [[ -z ${TENX_LOCAL_DIR:-} && -L $ROOT/.local ]]; }

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { curl -fsS -m 2 "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1; }

apply() {  # FILE: server-side apply (the CRDs are too big for the client-side annotation)
  kubectl_ apply --server-side --force-conflicts --field-manager=tenx-local-kueue -f "$1" >/dev/null
}

start() {
  mkdir -p "$LOGS" "$RUN"
  local started=$SECONDS
  # a manager this script did not start (another checkout's, on the same ports) would answer the readiness probe
  # below for ours, which then fails to bind and exits unseen
  ! ready || die "something else answers on 127.0.0.1:$HEALTH_PORT (another checkout's Kueue manager?): stop it" \
    "(its kueue.sh down, or make cluster-down there) or set KUEUE_HEALTH_PORT and KUEUE_WEBHOOK_PORT"
  log "starting the Kueue $VERSION manager (webhooks on 127.0.0.1:$WEBHOOK_PORT, log $LOGS/kueue.log)"
  # 9>&-: the lock stays with this script, not with the manager
  setsid "$BIN" --config="$CONFIG" --kubeconfig="$KUBECONFIG_FILE" --zap-log-level=info \
    </dev/null >>"$LOGS/kueue.log" 2>&1 9>&- &
  echo $! >"$PIDFILE"
  signature >"$RUN/kueue.sig"
  until ready; do
    running || { tail -n 30 "$LOGS/kueue.log" >&2; die "the Kueue manager exited while starting"; }
    (( SECONDS - started < READY_TIMEOUT )) || die "the Kueue manager was not ready within $READY_TIMEOUT s"
    sleep 0.5
  done
  log "ready in $((SECONDS - started)) s"
}

stop() {
  running || { rm -f "$PIDFILE" "$RUN/kueue.sig"; return 0; }
  local pid; pid="$(cat "$PIDFILE")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE" "$RUN/kueue.sig"
  log "stopped the manager (pid $pid)"
}

up() {
  mkdir -p "$STATE"
  exec 9>"$STATE.lock"
  flock -w 900 9 || die "another kueue.sh holds $STATE.lock"
  [[ -x $KUBECTL && -f $KUBECONFIG_FILE ]] || die "the local cluster is not built (deploy/local/cluster.sh up)"
  kubectl_ get --raw=/readyz >/dev/null 2>&1 || die "the local cluster's apiserver is not up (deploy/local/cluster.sh up)"
  build
  pki
  metrics_certs
  write_config
  # rewritten again only when what they are made from changes (parsing the CRDs takes seconds)
  local recipe; recipe="$({ echo "$VERSION $WEBHOOK_PORT"; cat "$HERE/manifests.py" "$PKI/ca.crt"; } | sha256sum | cut -c1-16)"
  if [[ $(cat "$MANIFESTS/.recipe" 2>/dev/null) != "$recipe" || ! -f $MANIFESTS/crds.yaml ]]; then
    python_ "$HERE/manifests.py" "$(source_dir)" "$WEBHOOK_PORT" "$PKI/ca.crt" "$MANIFESTS" \
      || die "rewriting Kueue's manifests failed"
    echo "$recipe" >"$MANIFESTS/.recipe"
  fi
  # what was applied last time, if it is all still there (a purged cluster has none of it): nothing to apply
  local applied; applied="$(cat "$MANIFESTS/crds.yaml" "$MANIFESTS/webhooks.yaml" "$QUEUES" | sha256sum | cut -c1-16)"
  local current=0
  [[ $(cat "$RUN/applied" 2>/dev/null) == "$applied" ]] && kubectl_ get crd/workloads.kueue.x-k8s.io \
    mutatingwebhookconfiguration/kueue-mutating-webhook-configuration \
    validatingwebhookconfiguration/kueue-validating-webhook-configuration clusterqueue/tenx-gateway \
    -o name >/dev/null 2>&1 && current=1
  if (( ! current )); then
    apply "$MANIFESTS/crds.yaml"
    kubectl_ wait --for=condition=Established --timeout=60s -f "$MANIFESTS/crds.yaml" >/dev/null
  fi
  if running && [[ $(cat "$RUN/kueue.sig" 2>/dev/null) == "$(signature)" ]]; then
    until ready; do running || die "the Kueue manager exited (log $LOGS/kueue.log)"; sleep 0.5; done
  elif running && borrowed; then
    log "WARNING: the running manager was started with another binary or configuration; it belongs to" \
      "$(readlink -f "$ROOT/.local")'s checkout, which restarts it (this one's .local is a link to it)"
  else
    running && log "binary or configuration changed; restarting the manager"
    stop
    start
  fi
  (( current )) && return 0
  apply "$MANIFESTS/webhooks.yaml"
  # the queues go through the webhooks just applied, which the apiserver may take a moment to call
  local tries=0
  until apply "$QUEUES" 2>"$RUN/queues.err"; do
    (( ++tries < 30 )) || { cat "$RUN/queues.err" >&2; die "applying $QUEUES failed"; }
    sleep 1
  done
  echo "$applied" >"$RUN/applied"
}

down() {
  borrowed && die "$ROOT/.local is a link to $(readlink -f "$ROOT/.local"): stop Kueue from the checkout it belongs to"
  exec 9>"$STATE.lock"
  flock -w 900 9 || die "another kueue.sh holds $STATE.lock"
  # the webhook configurations first: without the manager they would refuse every queued Job's create
  if [[ -f $MANIFESTS/webhooks.yaml && -f $KUBECONFIG_FILE ]]; then
    kubectl_ delete --ignore-not-found -f "$MANIFESTS/webhooks.yaml" >/dev/null 2>&1 || true
  fi
  stop
}

status() {
  if running; then
    echo "Kueue $VERSION: running, pid $(cat "$PIDFILE"), webhooks https://127.0.0.1:$WEBHOOK_PORT, log $LOGS/kueue.log"
    kubectl_ get clusterqueues 2>/dev/null || true
  else
    echo "Kueue $VERSION: not running"
    return 1
  fi
}

mkdir -p "$STATE"
case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
