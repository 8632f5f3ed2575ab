#!/usr/bin/env bash
# The real node's Services and its ways to and from the host, without touching the host's network: node.sh runs it
# as one of its parts (in the node's pid and mount namespaces, with the node's network namespace at NETNS).
#
# - kube-proxy (iptables mode) inside the node's network namespace: ClusterIPs and NodePorts work for the node's
#   pods and for processes in that namespace; its rules live and die with the namespace.
# - ports.list's `host` ports: the host's 127.0.0.1:PORT, reached from the node's namespace on PORT (its loopback,
#   and 10.88.0.1, the bridge the pods route through): a socat in the node's namespace forwards each connection to
#   a Unix socket, which a socat on the host's side serves by connecting to 127.0.0.1:PORT. kube-proxy reaches the
#   apiserver this way (127.0.0.1:6443), so do the kubelet and the pods (the `kubernetes` Service's endpoint is
#   10.88.0.1:6443, written by cluster.sh).
# - the kubelet's port for the apiserver (logs, exec, port-forward): the host's NODE_IP:KUBELET_PORT, forwarded to
#   the kubelet, which listens on the same address inside the node's namespace (TLS end to end).
# - ports.list's `node` ports: NodePorts of the node, published on the host's 127.0.0.1:PORT, the other way round.
#
# No interface, route or firewall rule is added on the host: the only things on the host's side are the Unix
# sockets under SOCKETS and the listeners on NODE_IP:KUBELET_PORT and on 127.0.0.1 for the `node` ports.
#
# Args: CONF_DIR LOG_DIR SOCKETS_DIR BIN_DIR PKI_DIR NETNS NODE_IP KUBELET_PORT
# It can be run by hand beside a running node (entering its mount namespace, where NETNS lives):
#   nsenter -t <node PID 1> -m -- bash network.sh ...
set -euo pipefail

CONF="$1" LOGS="$2" SOCKETS="$3" BIN="$4" PKI="$5" NETNS="$6" NODE_IP="$7" KUBELET_PORT="$8"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_NAME=tenx-real
POD_CIDR=10.88.0.0/16   # node.sh's CNI range

log() { printf '%s [real-node network] %s\n' "$(date -u +%FT%TZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }

command -v socat >/dev/null || die "socat is missing (scripts/install-runtime-deps.sh)"
command -v iptables >/dev/null || die "iptables is missing (scripts/install-runtime-deps.sh)"
[ -e "$NETNS" ] || die "no network namespace at $NETNS"
innet() { nsenter --net="$NETNS" "$@"; }

declare -A pids=()
stopping=0
stop_all() {
  stopping=1
  local name
  for name in "${!pids[@]}"; do kill -TERM "${pids[$name]}" 2>/dev/null || true; done
  wait || true
}
trap 'log stopping; stop_all; log stopped; exit 0' TERM INT

start() {  # NAME LOG CMD...
  local name="$1" out="$2"; shift 2
  "$@" >> "$out" 2>&1 &
  pids[$name]=$!
}

mkdir -p "$SOCKETS" "$LOGS" "$CONF"
chmod 700 "$SOCKETS"
# a Unix socket's path is at most 107 bytes
probe="$SOCKETS/node-65535.sock"
[ "${#probe}" -le 107 ] || die "the socket directory's path is too long for a Unix socket: $SOCKETS"

# forwarding between the pods' bridge and the node's own addresses (pod -> ClusterIP -> another pod); the CNI
# bridge plugin sets it too, once the first pod is there
innet sysctl -qw net.ipv4.ip_forward=1

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# the apiserver -> the kubelet
start kubelet-node "$LOGS/ports.log" nsenter --net="$NETNS" \
  socat "UNIX-LISTEN:$SOCKETS/kubelet.sock,fork,unlink-early,mode=600" "TCP:$NODE_IP:$KUBELET_PORT"
start kubelet-host "$LOGS/ports.log" \
  socat "TCP-LISTEN:$KUBELET_PORT,bind=$NODE_IP,fork,reuseaddr,backlog=512" "UNIX-CONNECT:$SOCKETS/kubelet.sock"
log "the kubelet's port: the host's $NODE_IP:$KUBELET_PORT"

while read -r direction port _; do
  case "$direction" in ''|\#*) continue ;; esac
  case "$direction" in
    host)
      sock="$SOCKETS/host-$port.sock"
      start "host-$port" "$LOGS/ports.log" socat "UNIX-LISTEN:$sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port"
      start "node-listener-$port" "$LOGS/ports.log" \
        nsenter --net="$NETNS" socat "TCP-LISTEN:$port,fork,reuseaddr,backlog=512" "UNIX-CONNECT:$sock"
      log "host port $port: reached from the node's namespace on its port $port" ;;
    node)
      sock="$SOCKETS/node-$port.sock"
      if port_taken "$port"; then
        log "WARNING: 127.0.0.1:$port is taken on the host: NodePort $port is not published there"
        continue
      fi
      start "node-$port" "$LOGS/ports.log" \
        nsenter --net="$NETNS" socat "UNIX-LISTEN:$sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port"
      start "host-listener-$port" "$LOGS/ports.log" \
        socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,backlog=512" "UNIX-CONNECT:$sock"
      log "NodePort $port: published on the host's 127.0.0.1:$port" ;;
    *) die "ports.list: unknown direction $direction" ;;
  esac
done < "$HERE/ports.list"

# kube-proxy: conntrack settings left alone (0: the table's size is the host's, not a namespace's, to set), NodePorts
# on every address of the node's namespace, the loopback's included (where the `node` ports arrive)
cat > "$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $PKI/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  localhostNodePorts: true
  minSyncPeriod: 1s
  syncPeriod: 30s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
start kube-proxy "$LOGS/kube-proxy.log" nsenter --net="$NETNS" "$BIN/kube-proxy" --config="$CONF/kube-proxy.yaml" --v=1
log "started kube-proxy (log $LOGS/kube-proxy.log) and $((${#pids[@]} - 1)) forwarders (log $LOGS/ports.log)"

# one part gone: the node's network is broken; stop (node.sh then stops the node, and cluster.sh up starts it again)
while :; do
  set +e
  wait -n
  set -e
  [ "$stopping" = 1 ] && continue
  for name in "${!pids[@]}"; do
    if ! kill -0 "${pids[$name]}" 2>/dev/null; then
      log "$name exited (see $LOGS/ports.log, $LOGS/kube-proxy.log)"
      stop_all
      exit 1
    fi
  done
done
