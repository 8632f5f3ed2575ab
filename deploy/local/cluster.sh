#!/usr/bin/env bash
# Local, real Kubernetes control plane for tenx-gateway development and tests.
#
#   cluster.sh build          build missing/stale binaries into .local/bin
#   cluster.sh up             build, make PKI + kubeconfig, start everything, wait until ready
#   cluster.sh down [--purge] stop everything (--purge also deletes data, certs, logs)
#   cluster.sh clean          same as: down --purge
#   cluster.sh status         show what is running
#   cluster.sh restart-agent  rebuild and restart only the node agent
#   cluster.sh restart-real   restart only the real node (kubelet + containerd + registry, node tenx-real)
#   cluster.sh real-ctr ARGS  containerd's ctr inside the real node (e.g. -n k8s.io images ls)
#   cluster.sh real-push SRC REF  copy an image (skopeo source, e.g. oci:DIR:TAG) into the real node's registry,
#                             where its containerd pulls REF from (e.g. registry.local/tenx-gateway:dev)
#   cluster.sh env            print shell exports (KUBECONFIG, PATH) for this cluster
#   cluster.sh nodes          print each node's name and the directory of its pods' log files (node collectors)
#
# Everything lives under <repo>/.local (git-ignored). See deploy/local/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
. "$HERE/versions.env"

LOCAL="${TENX_LOCAL_DIR:-$ROOT/.local}"
BIN="$LOCAL/bin"
PKI="$LOCAL/pki"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
ETCD_DATA="$LOCAL/etcd"
NODE_STATE="$LOCAL/node"
KUBECONFIG_FILE="$LOCAL/kubeconfig"
AGENT_SRC="$HERE/node-agent"

NODE_NAME="tenx-local"
CONTEXT="tenx-local"
APISERVER_PORT=6443
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
KCM_PORT=10257
SCHED_PORT=10259
AGENT_ADDR="127.0.0.1:10250"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1"          # first IP of SERVICE_CIDR: the `kubernetes` Service
READY_TIMEOUT="${TENX_READY_TIMEOUT:-180}"
# The real node (deploy/local/realnode/): upstream kubelet + containerd + runc + CNI + a local registry.
# TENX_REAL_NODE=0 leaves it out (the process-agent node alone, as before).
REAL_NODE="${TENX_REAL_NODE:-1}"
REAL_NODE_NAME="tenx-real"
REAL_DIR="$LOCAL/real"
REAL_SRC="$HERE/realnode"
KUBELET_PORT=10251

K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler tenx-node-agent tenx-real-node)

# ---------------------------------------------------------------- helpers
log()  { printf '[cluster] %s\n' "$*"; }
warn() { printf '[cluster] WARNING: %s\n' "$*" >&2; }
die()  { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
now()  { date +%s; }
elapsed() { local s=$(( $(now) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=5s "$@"; }

need_go() {
  command -v go >/dev/null 2>&1 || die "Go toolchain not found in PATH (need Go >= 1.25 for Kubernetes, >= 1.26 for etcd $ETCD_VERSION)"
}

hash_stdin() { sha256sum | cut -c1-64; }

# ---------------------------------------------------------------- build
# Moves a fresh build into place unless the file there is byte-identical: the running component's start
# signature (component_sig: binary mtime and size) then stays the same, and `up` does not restart it for a
# rebuild that changed nothing (e.g. a go.mod change for another command of the same module).
install_bin() {  # NEW DEST
  if [ -f "$2" ] && cmp -s "$1" "$2"; then rm -f "$1"; else mv -f "$1" "$2"; fi
}
stamp_file() { echo "$BIN/.stamp-$1"; }
is_fresh() {  # name hash binaries...
  local name="$1" h="$2"; shift 2
  local f
  for f in "$@"; do [ -x "$BIN/$f" ] || return 1; done
  [ -f "$(stamp_file "$name")" ] && [ "$(cat "$(stamp_file "$name")")" = "$h" ]
}

k8s_ldflags() {
  local v="$K8S_VERSION" rest major minor build_date
  rest="${v#v}"; major="${rest%%.*}"; rest="${rest#*.}"; minor="${rest%%.*}"
  # Build date = the release's publication time on the module proxy (reproducible).
  build_date="$(cd "$HERE/k8s" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes 2>/dev/null || true)"
  [ -n "$build_date" ] || build_date="1970-01-01T00:00:00Z"
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitCommit=${K8S_GIT_COMMIT:-} -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  echo "$flags"
}

build_k8s() {
  local ldflags h
  ldflags="$(k8s_ldflags)"
  h="$( { echo "$K8S_VERSION" "${K8S_GIT_COMMIT:-}"; go version; echo "$ldflags"; cat "$HERE/k8s/go.mod" "$HERE/k8s/go.sum"; } | hash_stdin)"
  if is_fresh kubernetes "$h" "${K8S_CMDS[@]}"; then
    log "kubernetes $K8S_VERSION: up to date"
    return 0
  fi
  if [ ! -f "$(stamp_file kubernetes)" ]; then
    log "first build compiles Kubernetes $K8S_VERSION from source: ~6-15 minutes on 2 cores with a cold Go"
    log "build cache (measured; the whole cold build incl. etcd and the node agent: ~13-22 minutes)."
    log "With a warm cache ($(go env GOCACHE)) this only links: ~30 seconds."
  fi
  log "building ${K8S_CMDS[*]} ($K8S_VERSION) ..."
  local t0 tmp pkgs=() c
  t0=$(now)
  tmp="$(mktemp -d "$BIN/.build-k8s.XXXXXX")"
  for c in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  if ! (cd "$HERE/k8s" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"); then
    rm -rf "$tmp"; die "kubernetes build failed"
  fi
  for c in "${K8S_CMDS[@]}"; do install_bin "$tmp/$c" "$BIN/$c"; done
  rm -rf "$tmp"
  echo "$h" > "$(stamp_file kubernetes)"
  log "kubernetes $K8S_VERSION built in $(elapsed "$t0")"
}

build_etcd() {
  local ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_GIT_SHA:-$ETCD_VERSION}" h t0
  h="$( { echo "$ETCD_VERSION"; go version; echo "$ldflags"; cat "$HERE/etcd/go.mod" "$HERE/etcd/go.sum" "$HERE/etcd/main.go"; } | hash_stdin)"
  if is_fresh etcd "$h" etcd; then
    log "etcd $ETCD_VERSION: up to date"
    return 0
  fi
  log "building etcd $ETCD_VERSION (~2 minutes with a cold Go cache) ..."
  t0=$(now)
  (cd "$HERE/etcd" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$BIN/etcd.new" .) || die "etcd build failed"
  install_bin "$BIN/etcd.new" "$BIN/etcd"
  echo "$h" > "$(stamp_file etcd)"
  log "etcd $ETCD_VERSION built in $(elapsed "$t0")"
}

agent_present() { [ -f "$AGENT_SRC/go.mod" ]; }

agent_hash() {
  { go version
    (cd "$AGENT_SRC" && find . -type f ! -path './.git/*' ! -name tenx-node-agent -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | hash_stdin
}

build_agent() {
  if ! agent_present; then
    warn "deploy/local/node-agent/ does not exist yet: skipping the node agent (no node will register)"
    return 0
  fi
  local h t0
  h="$(agent_hash)"
  if is_fresh tenx-node-agent "$h" tenx-node-agent; then
    log "tenx-node-agent: up to date"
    return 0
  fi
  log "building tenx-node-agent (~6 minutes with a cold Go cache) ..."
  t0=$(now)
  (cd "$AGENT_SRC" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$BIN/tenx-node-agent.new" .) || die "tenx-node-agent build failed"
  install_bin "$BIN/tenx-node-agent.new" "$BIN/tenx-node-agent"
  echo "$h" > "$(stamp_file tenx-node-agent)"
  log "tenx-node-agent built in $(elapsed "$t0")"
}

cmd_build() {
  need_go
  mkdir -p "$BIN"
  local t0; t0=$(now)
  build_etcd
  build_k8s
  build_agent
  log "build done in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- PKI
# sign NAME SUBJECT EXT-LINES...: key + cert signed by the local CA
# (signed by $SIGN_CA, default: ca)
sign() {
  local name="$1" subj="$2" ca="${SIGN_CA:-ca}"; shift 2
  [ -f "$PKI/$name.crt" ] && [ -f "$PKI/$name.key" ] && return 0
  local ext; ext="$(mktemp)"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$@" > "$ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$ext" "$PKI/$name.csr"
  chmod 600 "$PKI/$name.key"
}

make_pki() {
  command -v openssl >/dev/null || die "openssl not found"
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.key" ] || [ ! -f "$PKI/ca.crt" ]; then
    log "generating PKI in $PKI"
    rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI"/*.kubeconfig "$KUBECONFIG_FILE"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
      -days 3650 -sha256 -subj "/CN=tenx-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    chmod 600 "$PKI/ca.key"
  fi
  # front-proxy CA + client: request-header authentication (aggregation layer); without it
  # the controller-manager and scheduler log errors about the requestheader client CA.
  if [ ! -f "$PKI/front-proxy-ca.key" ] || [ ! -f "$PKI/front-proxy-ca.crt" ]; then
    rm -f "$PKI"/front-proxy-client.*
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" \
      -days 3650 -sha256 -subj "/CN=tenx-local-front-proxy-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    chmod 600 "$PKI/front-proxy-ca.key"
  fi
  SIGN_CA=front-proxy-ca sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
  sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=tenx-admin" "extendedKeyUsage=clientAuth"
  sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  sign scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  sign node-agent "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME"
  if [ ! -f "$PKI/sa.key" ] || [ ! -f "$PKI/sa.pub" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    chmod 600 "$PKI/sa.key"
  fi
  write_kubeconfig "$KUBECONFIG_FILE" admin
  write_kubeconfig "$PKI/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$PKI/scheduler.kubeconfig" scheduler
}

write_kubeconfig() {  # FILE CERTNAME
  local file="$1" cert="$2" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat > "$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CONTEXT
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $CONTEXT-$cert
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 < "$PKI/$cert.key")
contexts:
- name: $CONTEXT
  context:
    cluster: $CONTEXT
    user: $CONTEXT-$cert
    namespace: default
current-context: $CONTEXT
EOF
  chmod 600 "$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; else mv -f "$tmp" "$file"; fi
}

# ---------------------------------------------------------------- processes
component_args() {  # prints the command line (one arg per line) of a component
  case "$1" in
    etcd) printf '%s\n' "$BIN/etcd" \
      --name=tenx-local --data-dir="$ETCD_DATA" \
      --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster="tenx-local=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new \
      --log-level=warn ;;
    kube-apiserver) printf '%s\n' "$BIN/kube-apiserver" \
      --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1 \
      --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --service-cluster-ip-range="$SERVICE_CIDR" --endpoint-reconciler-type=none \
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
      --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --kubelet-preferred-address-types=InternalIP --kubelet-certificate-authority="$PKI/ca.crt" \
      --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
      --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
      --requestheader-extra-headers-prefix=X-Remote-Extra- \
      --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --profiling=false --v=1 ;;
    kube-controller-manager) printf '%s\n' "$BIN/kube-controller-manager" \
      --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
      --kubeconfig="$PKI/controller-manager.kubeconfig" \
      --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
      --controllers='*' --use-service-account-credentials=true --leader-elect=false \
      --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
      --profiling=false --v=1 ;;
    kube-scheduler) printf '%s\n' "$BIN/kube-scheduler" \
      --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
      --kubeconfig="$PKI/scheduler.kubeconfig" \
      --authentication-kubeconfig="$PKI/scheduler.kubeconfig" --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
      --leader-elect=false --profiling=false --v=1 ;;
    tenx-node-agent) printf '%s\n' "$BIN/tenx-node-agent" \
      --kubeconfig "$KUBECONFIG_FILE" --node-name "$NODE_NAME" --listen-addr "$AGENT_ADDR" \
      --tls-cert "$PKI/node-agent.crt" --tls-key "$PKI/node-agent.key" \
      --state-dir "$NODE_STATE" --crashloop-base 1s --crashloop-max 10s ;;
    # PID 1 of its own pid + mount namespaces (realnode/node.sh says why); --kill-child: if unshare dies, so
    # does the node
    tenx-real-node) printf '%s\n' unshare --pid --fork --mount --propagation private --mount-proc \
      --kill-child=SIGTERM -- bash "$REAL_SRC/node.sh" "$REAL_DIR" "$BIN" "$PKI" "$(node_ip)" "$KUBELET_PORT" \
      "$REAL_DIR/images" ;;
    *) die "unknown component $1" ;;
  esac
}

pid_of() {  # prints the pid of a running component, or fails
  local name="$1" pidf="$RUN/$1.pid" pid exe
  [ -f "$pidf" ] || return 1
  pid="$(cat "$pidf" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: argv[0] must be our binary (the real node: its command line up to node.sh, which
  # names no address, so a changed host address restarts it through the signature instead of losing track of it)
  if [ "$name" = tenx-real-node ]; then
    [ "$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -n 11)" = "$(component_args "$name" | head -n 11)" ] || return 1
  else
    exe="$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -n1)" || return 1
    [ "$exe" = "$BIN/$name" ] || return 1
  fi
  echo "$pid"
}

# signature of what a running component was started with (binary + args); a rebuild that produced the same
# bytes keeps the old file (install_bin), so it does not count as a change
component_sig() {
  if [ "$1" = tenx-real-node ]; then
    { component_args "$1"; stat -c '%Y %s' "$BIN/kubelet" "$BIN/kube-proxy" 2>/dev/null || true
      cat "$REAL_SRC/node.sh" "$REAL_SRC/network.sh" "$REAL_SRC/ports.list" "$REAL_SRC/images.list" \
        "$REAL_DIR/images/.stamp" 2>/dev/null || true; } | hash_stdin
    return
  fi
  { component_args "$1"; stat -c '%Y %s' "$BIN/$1" 2>/dev/null || true; } | hash_stdin
}

component_ports() {
  case "$1" in
    etcd) echo "$ETCD_CLIENT_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$APISERVER_PORT" ;;
    kube-controller-manager) echo "$KCM_PORT" ;;
    kube-scheduler) echo "$SCHED_PORT" ;;
    tenx-node-agent) echo "${AGENT_ADDR##*:}" ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_component() {
  local name="$1" args=() port i
  # Our process is not running: if something else holds its port (another checkout's
  # cluster, a process we lost track of), fail instead of talking to a foreign server.
  for port in $(component_ports "$name"); do
    for ((i = 0; i < 50; i++)); do port_open "$port" || break; sleep 0.1; done  # a just-stopped process may linger
    if port_open "$port"; then
      ss -ltnp "sport = :$port" 2>/dev/null >&2 || true
      die "cannot start $name: 127.0.0.1:$port is already in use by another process (not started from $LOCAL)"
    fi
  done
  mapfile -t args < <(component_args "$name")
  mkdir -p "$RUN" "$LOGS"
  printf '\n===== %s starting %s =====\n' "$(date -u +%FT%TZ)" "$name" >> "$LOGS/$name.log"
  # setsid: own session, detached from the calling shell/terminal; stdin from /dev/null.
  # 9>&-: do not leak the cluster.sh lock fd into the daemons.
  setsid "${args[@]}" < /dev/null >> "$LOGS/$name.log" 2>&1 9>&- &
  local pid=$!
  echo "$pid" > "$RUN/$name.pid"
  component_sig "$name" > "$RUN/$name.sig"
  log "started $name (pid $pid, log $LOGS/$name.log)"
}

stop_component() {
  local name="$1" pid i grace=100  # tenths of a second to wait after SIGTERM
  case "$name" in
    # the apiserver may wait for open watches; the agent stops all pod processes
    kube-apiserver|tenx-node-agent) grace=200 ;;
    tenx-real-node) grace=300 ;;
  esac
  if ! pid="$(pid_of "$name")"; then
    rm -f "$RUN/$name.pid" "$RUN/$name.sig"
    [ "$name" = tenx-real-node ] && real_cleanup
    return 0
  fi
  if [ "$name" = tenx-real-node ]; then
    # unshare waits for its child, PID 1 of the node's namespaces: that one stops kubelet, containerd and the
    # registry; when it returns the kernel kills what is left in the namespace
    local init
    init="$(cat "/proc/$pid/task/$pid/children" 2>/dev/null | awk '{print $1}')"
    kill -TERM "${init:-$pid}" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for ((i = 0; i < grace; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name (pid $pid) did not stop after SIGTERM; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.sig"
  [ "$name" = tenx-real-node ] && real_cleanup
  log "stopped $name (pid $pid)"
}

# start a component unless it is already running with the same binary and args
ensure_component() {
  local name="$1" pid
  if pid="$(pid_of "$name")"; then
    if [ "$(cat "$RUN/$name.sig" 2>/dev/null)" = "$(component_sig "$name")" ]; then
      return 0
    fi
    log "$name: binary or flags changed; restarting"
    stop_component "$name"
  else
    [ -f "$RUN/$name.pid" ] && log "$name: stale pid file; cleaning up"
    rm -f "$RUN/$name.pid" "$RUN/$name.sig"
  fi
  start_component "$name"
}

tail_log() {
  local name="$1" n="${2:-40}"
  [ -f "$LOGS/$name.log" ] || return 0
  printf -- '----- last %d lines of %s -----\n' "$n" "$LOGS/$name.log" >&2
  tail -n "$n" "$LOGS/$name.log" >&2
  printf -- '-----\n' >&2
}

# fail fast (with its log) if a component we started has died
check_alive() {
  local name
  for name in "$@"; do
    if ! pid_of "$name" >/dev/null; then
      tail_log "$name"
      die "$name exited unexpectedly (see $LOGS/$name.log)"
    fi
  done
}

# wait_for DESCRIPTION DEADLINE COMPONENTS-TO-WATCH -- COMMAND...
wait_for() {
  local what="$1" deadline="$2" watch=()
  shift 2
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do watch+=("$1"); shift; done
  shift
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    check_alive "${watch[@]}"
    if [ "$(now)" -ge "$deadline" ]; then
      local w; for w in "${watch[@]}"; do tail_log "$w" 25; done
      die "timed out after ${READY_TIMEOUT}s waiting for $what"
    fi
    sleep 1
  done
}

etcd_healthy()      { curl -fsS --max-time 3 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready()   { [ "$(kubectl_ get --raw=/readyz 2>/dev/null)" = "ok" ]; }
# The Node's Ready condition can still be True from before a restart, so also
# require the agent's kubelet port to accept connections.
agent_listening()   { port_open "${AGENT_ADDR##*:}"; }
node_ready()        { agent_listening && node_ready_status; }
node_ready_status() { [ "$(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = "True" ]; }
default_sa_exists() { kubectl_ -n default get serviceaccount default -o name >/dev/null 2>&1; }

have_agent_bin() { [ -x "$BIN/tenx-node-agent" ]; }

# ---------------------------------------------------------------- the real node (realnode/)
# kubelet refuses a loopback node IP, so the node's InternalIP (where the API server reaches its kubelet port for
# logs and exec) is the host's own address; kubelet listens only there
node_ip() {
  local ip
  ip="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)"
  [ -n "$ip" ] || ip="$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')"
  echo "${ip:-}"
}

real_prepare() {  # everything the real node needs before it starts: packages, images, certificates
  "$ROOT/scripts/install-runtime-deps.sh" || die "the real node's packages are missing (scripts/install-runtime-deps.sh)"
  local ip; ip="$(node_ip)"
  [ -n "$ip" ] || die "the real node needs a non-loopback IPv4 address on this host (kubelet refuses 127.0.0.1)"
  local pause_c
  pause_c="$(cd "$HERE/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  [ -f "$pause_c" ] || die "pause.c not found in the Go module cache ($pause_c)"
  "$REAL_SRC/images.sh" "$REAL_DIR/images" "$pause_c" || die "building the real node's images failed"
  # kubelet's serving certificate (the API server checks it against the local CA) names the current node IP
  if [ -f "$PKI/kubelet-real.crt" ] && ! openssl x509 -in "$PKI/kubelet-real.crt" -noout -checkip "$ip" | grep -q 'does match'; then
    rm -f "$PKI/kubelet-real.crt" "$PKI/kubelet-real.key"
  fi
  sign kubelet-real "/CN=$REAL_NODE_NAME" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:$ip,IP:127.0.0.1,DNS:$REAL_NODE_NAME"
  sign kubelet-real-client "/O=system:nodes/CN=system:node:$REAL_NODE_NAME" "extendedKeyUsage=clientAuth"
  write_kubeconfig "$PKI/kubelet-real.kubeconfig" kubelet-real-client
  # kube-proxy in the node's network namespace (realnode/network.sh), as system:kube-proxy (the bootstrap
  # ClusterRoleBinding system:node-proxier)
  sign kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  write_kubeconfig "$PKI/kube-proxy.kubeconfig" kube-proxy
}

# The `kubernetes` Service for the real node's pods: with --endpoint-reconciler-type=none it has no endpoints (the
# apiserver binds 127.0.0.1 only, which an Endpoints object refuses), so this EndpointSlice gives it one: the
# apiserver as the node's pods reach it, 10.88.0.1:6443 (realnode/network.sh forwards that port to the host's
# 127.0.0.1:6443). kube-proxy reads EndpointSlices; the v1 Endpoints stay empty, so nothing else changes (the
# gateway's tenant walls, which read them, still see none).
REAL_APISERVER_ENDPOINT="10.88.0.1"
real_apiserver_endpoints() {
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-$REAL_NODE_NAME
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: tenx-local-cluster
addressType: IPv4
endpoints:
  - addresses: [$REAL_APISERVER_ENDPOINT]
    conditions: {ready: true}
    nodeName: $REAL_NODE_NAME
ports:
  - name: https
    port: $APISERVER_PORT
    protocol: TCP
EOF
}

# after the node's namespaces are gone: its cgroups (runc and kubelet leave them) and the empty /var/lib/cni
# mount point; nothing else of it exists outside .local/real
real_cleanup() {
  local i d left
  for ((i = 0; i < 50; i++)); do
    left=0
    for d in /sys/fs/cgroup/*/tenx-real; do
      [ -d "$d" ] || continue
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$d" ] && left=1
    done
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  [ "$left" = 0 ] || warn "cgroups under /sys/fs/cgroup/*/tenx-real are still busy"
  rmdir /var/lib/cni 2>/dev/null || true
}

# Ready can be left over from before a restart: the kubelet must answer on its port too (any HTTP status: it
# refuses anonymous requests; the listener on the host's side is network.sh's forwarder, which accepts before the
# kubelet behind it is up, so an open port alone says nothing)
real_node_ready() {
  [ "$(curl -sk -m 3 -o /dev/null -w '%{http_code}' "https://$(node_ip):$KUBELET_PORT/healthz" 2>/dev/null)" != 000 ] \
    && [ "$(kubectl_ get node "$REAL_NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = "True" ]
}

real_enabled() { [ "$REAL_NODE" = 1 ]; }

with_lock() {
  mkdir -p "$RUN"
  exec 9> "$RUN/cluster.lock"
  if ! flock -n 9; then
    log "another cluster.sh command is running; waiting for it (lock $RUN/cluster.lock)"
    flock -w 900 9 || die "timed out waiting for the lock $RUN/cluster.lock"
  fi
}

cmd_up() {
  local t_all; t_all=$(now)
  with_lock
  cmd_build
  local t0; t0=$(now)
  make_pki
  mkdir -p "$ETCD_DATA" "$NODE_STATE" "$LOGS" "$RUN"
  chmod 700 "$ETCD_DATA"
  local deadline=$(( $(now) + READY_TIMEOUT ))

  ensure_component etcd
  wait_for "etcd on 127.0.0.1:$ETCD_CLIENT_PORT" "$deadline" etcd -- etcd_healthy

  ensure_component kube-apiserver
  wait_for "kube-apiserver /readyz" "$deadline" etcd kube-apiserver -- apiserver_ready

  ensure_component kube-controller-manager
  ensure_component kube-scheduler
  local watch=(etcd kube-apiserver kube-controller-manager kube-scheduler)
  if have_agent_bin; then
    ensure_component tenx-node-agent
    watch+=(tenx-node-agent)
  else
    warn "no tenx-node-agent binary: the control plane runs without a node"
  fi

  if real_enabled; then
    real_prepare
    ensure_component tenx-real-node
    watch+=(tenx-real-node)
  fi

  wait_for "ServiceAccount default/default (kube-controller-manager)" "$deadline" "${watch[@]}" -- default_sa_exists
  if have_agent_bin; then
    wait_for "node $NODE_NAME to be Ready (tenx-node-agent)" "$deadline" "${watch[@]}" -- node_ready
  fi
  if real_enabled; then
    wait_for "node $REAL_NODE_NAME to be Ready (kubelet + containerd, log $REAL_DIR/logs/)" "$deadline" "${watch[@]}" -- real_node_ready
    real_apiserver_endpoints || die "cannot write the EndpointSlice of the kubernetes Service for $REAL_NODE_NAME"
  fi
  log "cluster is up (start took $(elapsed "$t0"), total $(elapsed "$t_all"))"
  log "  export KUBECONFIG=$KUBECONFIG_FILE   # context $CONTEXT, server https://127.0.0.1:$APISERVER_PORT"
  log "  kubectl: $BIN/kubectl"
}

cmd_down() {
  local purge=0
  for a in "$@"; do
    case "$a" in
      --purge) purge=1 ;;
      *) die "unknown option for down: $a" ;;
    esac
  done
  with_lock
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_component "${COMPONENTS[$i]}"; done
  if [ "$purge" = 1 ]; then
    rm -rf "$ETCD_DATA" "$PKI" "$LOGS" "$NODE_STATE" "$KUBECONFIG_FILE"
    # the real node's state (containerd's content and snapshots, registry, kubelet); its built images are kept
    find "$REAL_DIR" -mindepth 1 -maxdepth 1 ! -name images -exec rm -rf {} + 2>/dev/null || true
    find "$RUN" -mindepth 1 ! -name cluster.lock -delete 2>/dev/null || true
    log "purged cluster data (etcd, pki, kubeconfig, logs, node state); binaries in $BIN kept"
  fi
  log "cluster is down"
}

cmd_status() {
  local name pid any=0
  for name in "${COMPONENTS[@]}"; do
    if pid="$(pid_of "$name")"; then
      printf '%-24s running  pid %-8s log %s\n' "$name" "$pid" "$LOGS/$name.log"
      any=1
    elif [ "$name" = tenx-node-agent ] && ! have_agent_bin; then
      printf '%-24s not built\n' "$name"
    elif [ "$name" = tenx-real-node ] && ! real_enabled; then
      printf '%-24s off (TENX_REAL_NODE=0)\n' "$name"
    else
      printf '%-24s stopped\n' "$name"
    fi
  done
  if [ "$any" = 1 ] && [ -x "$BIN/kubectl" ] && [ -f "$KUBECONFIG_FILE" ]; then
    if apiserver_ready; then
      echo "apiserver: https://127.0.0.1:$APISERVER_PORT ready (KUBECONFIG=$KUBECONFIG_FILE)"
      kubectl_ get nodes -o wide 2>/dev/null || true
    else
      echo "apiserver: not ready"
    fi
  fi
}

cmd_restart_agent() {
  with_lock
  agent_present || die "deploy/local/node-agent/ does not exist"
  need_go
  mkdir -p "$BIN"
  build_agent
  [ -f "$KUBECONFIG_FILE" ] && apiserver_ready || die "the control plane is not running; use: $0 up"
  stop_component tenx-node-agent
  start_component tenx-node-agent
  local deadline=$(( $(now) + READY_TIMEOUT ))
  wait_for "node $NODE_NAME to be Ready (tenx-node-agent)" "$deadline" tenx-node-agent -- node_ready
  log "tenx-node-agent restarted; node $NODE_NAME is Ready"
}

cmd_restart_real() {
  with_lock
  [ -f "$KUBECONFIG_FILE" ] && apiserver_ready || die "the control plane is not running; use: $0 up"
  need_go
  build_k8s
  real_prepare
  stop_component tenx-real-node
  start_component tenx-real-node
  local deadline=$(( $(now) + READY_TIMEOUT ))
  wait_for "node $REAL_NODE_NAME to be Ready" "$deadline" tenx-real-node -- real_node_ready
  real_apiserver_endpoints || die "cannot write the EndpointSlice of the kubernetes Service for $REAL_NODE_NAME"
  log "real node restarted; node $REAL_NODE_NAME is Ready"
}

# containerd's own client inside the node's namespaces, e.g. `cluster.sh real-ctr -n k8s.io containers ls`
cmd_real_ctr() {
  local pid init
  pid="$(pid_of tenx-real-node)" || die "the real node is not running"
  init="$(awk '{print $1}' "/proc/$pid/task/$pid/children")"
  exec nsenter -t "$init" -m -n -- ctr --address /run/containerd/containerd.sock "$@"
}

# The local registry mirrors each registry host containerd has a hosts.toml for (realnode/node.sh writes them) under
# a path of its own: docker.io's aliases under docker.io/, every other host under its name (registry.local is the
# project's own). An image pushed under REF's path is what pods naming REF pull.
cmd_real_push() {
  [ "$#" -eq 2 ] || die "usage: $0 real-push SRC REF  (SRC as skopeo names it, e.g. oci:build/image/oci:dev)"
  local src="$1" ref="$2" pid init host path
  pid="$(pid_of tenx-real-node)" || die "the real node is not running (make cluster)"
  init="$(awk '{print $1}' "/proc/$pid/task/$pid/children")"
  host="${ref%%/*}"
  [ "$host" != "$ref" ] || die "real-push: REF needs a registry host (e.g. registry.local/NAME:TAG), not $ref"
  case "$host" in
    registry-1.docker.io|index.docker.io) path=docker.io ;;
    _default) die "real-push: $ref names no registry host" ;;
    *) [ -f "$REAL_DIR/conf/certs.d/$host/hosts.toml" ] \
         || die "real-push: the real node's containerd mirrors no registry $host (realnode/node.sh)"
       path="$host" ;;
  esac
  # the registry listens in the node's network namespace, whose file is in the node's private /run
  nsenter -t "$init" -m --wd="$PWD" -- nsenter --net=/run/netns/tenx-real -- \
    skopeo copy --quiet --dest-tls-verify=false "$src" "docker://127.0.0.1:5000/$path/${ref#*/}"
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export PATH=$BIN:\$PATH"
}

# Where each node keeps its pods' container logs, laid out as kubelet's /var/log/pods (the process agent too):
# what a node collector of the gateway (`tenx-gateway collect --node NAME`) reads.
cmd_nodes() {
  echo "$NODE_NAME $NODE_STATE/pod-logs"
  if real_enabled; then echo "$REAL_NODE_NAME $REAL_DIR/pod-logs"; fi
}

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

# A second checkout of the repository (a git worktree) whose .local is a link to the first one's shares that
# checkout's cluster: its processes run that checkout's binaries and scripts, which this copy would not recognise
# as its own (and would start again beside them). So it only looks: `up` checks the cluster is up, and what would
# build, start or stop something is refused; run those in the checkout that owns the cluster. What looks into the
# running processes (status, real-ctr, real-push) is the owner's cluster.sh's to do: it is handed over.
borrowed() {
  [ -z "${TENX_LOCAL_DIR:-}" ] && [ -L "$ROOT/.local" ]
}

cmd_up_borrowed() {
  local owner; owner="$(readlink -f "$ROOT/.local")"
  [ -f "$KUBECONFIG_FILE" ] && apiserver_ready \
    || die "$ROOT/.local is a link to $owner, whose cluster is not up: run \`cluster.sh up\` in the checkout it belongs to"
  node_ready || die "node $NODE_NAME is not Ready (see $owner/logs)"
  if real_enabled; then real_node_ready || die "node $REAL_NODE_NAME is not Ready (see $owner/logs)"; fi
  log "using the cluster of $owner (this checkout's .local is a link to it); it is up"
}

main() {
  local cmd="${1:-}"
  [ "$#" -gt 0 ] && shift
  if borrowed; then
    case "$cmd" in
      up) cmd_up_borrowed; return ;;
      build|down|clean|restart-agent|restart-real)
        die "$ROOT/.local is a link to $(readlink -f "$ROOT/.local"): $cmd that cluster from the checkout it belongs to" ;;
      status|real-ctr|real-push)
        exec "$(dirname "$(readlink -f "$ROOT/.local")")/deploy/local/cluster.sh" "$cmd" "$@" ;;
    esac
  fi
  case "$cmd" in
    build) cmd_build "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    clean) cmd_down --purge ;;
    status) cmd_status ;;
    restart-agent) cmd_restart_agent ;;
    restart-real) cmd_restart_real ;;
    real-ctr) cmd_real_ctr "$@" ;;
    real-push) cmd_real_push "$@" ;;
    env) cmd_env ;;
    nodes) cmd_nodes ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
