#!/usr/bin/env bash
# The real node `tenx-real`: PID 1 of its own pid + mount namespace (cluster.sh starts it with
#   unshare --pid --fork --mount --propagation private --mount-proc -- bash node.sh ...),
# running the local image registry, containerd (+ runc, CNI bridge) and an upstream kubelet.
#
# Why namespaces (see deploy/local/README.md, "The real node"):
# - mount: kubelet rewrites host sysctls it thinks a node needs (vm.overcommit_memory, kernel.panic,
#   kernel.panic_on_oops...); here the /proc/sys files are covered by files holding the values it wants, so it
#   finds them set and the host keeps its own. /run is a private tmpfs (containerd's shim sockets, runc state,
#   pod netns files), /var/lib/cni a bind of our own dir. Every mount made by kubelet, containerd and runc lives
#   and dies with this namespace: nothing is left on the host when it ends.
# - net: the registry, containerd, kubelet, kube-proxy and the pods (on the bridge cni0) live in a network namespace
#   of their own, so the CNI bridge, its routes, its sysctls and kube-proxy's iptables rules never touch the host's
#   network. The kubelet is in there because it reaches the pods over the network (HTTP and TCP probes, the
#   runtime's exec and port-forward streams); the node's address (the host's own, NODE_IP) is on that namespace's
#   loopback, where the kubelet listens. network.sh joins the two namespaces through Unix sockets only: the
#   apiserver (and ports.list's other host ports) for the node, the kubelet's port on the host's NODE_IP for the
#   apiserver, NodePorts on the host's loopback.
# - pid: when this process exits the kernel kills everything left in the namespace (shims, containers), so
#   `cluster.sh down` cannot leave a container behind.
#
# Args: REAL_DIR BIN_DIR PKI_DIR NODE_IP KUBELET_PORT IMAGES_DIR
set -euo pipefail

REAL="$1" BIN="$2" PKI="$3" NODE_IP="$4" KUBELET_PORT="$5" IMAGES="$6"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_NAME=tenx-real
CONF="$REAL/conf"
NETNS=/run/netns/tenx-real
SOCK=/run/containerd/containerd.sock   # in the private /run: kubelet shares the mount namespace (no path-length worry)
REGISTRY=127.0.0.1:5000          # inside the node's network namespace only
CGROUP_ROOT=tenx-real

log() { printf '%s [real-node] %s\n' "$(date -u +%FT%TZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }

[ "$$" = 1 ] || die "must run as PID 1 of its own pid namespace (started by cluster.sh)"

declare -A pids=()
stopping=0
shutdown() {
  stopping=1
  log "stopping"
  [ -n "${pids[kubelet]:-}" ] && kill -TERM "${pids[kubelet]}" 2>/dev/null
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "${pids[kubelet]:-0}" 2>/dev/null || break; sleep 0.1; done
  for name in containerd registry network; do [ -n "${pids[$name]:-}" ] && kill -TERM "${pids[$name]}" 2>/dev/null; done
  for ((i = 0; i < 100; i++)); do
    kill -0 "${pids[containerd]:-0}" 2>/dev/null || kill -0 "${pids[registry]:-0}" 2>/dev/null \
      || kill -0 "${pids[network]:-0}" 2>/dev/null || break
    sleep 0.1
  done
  # returning from PID 1 makes the kernel SIGKILL the rest of the namespace: shims and containers
  log "stopped"
  exit 0
}
trap shutdown TERM INT

# ------------------------------------------------------------------ mounts (this namespace only)
mount -t tmpfs -o mode=755 tenx-real-run /run
mkdir -p /run/netns /run/containerd /run/lock
mkdir -p "$REAL/cni/cache" /var/lib/cni
mount --bind "$REAL/cni/cache" /var/lib/cni
# kubelet's kernel tunables (pkg/kubelet/cm/container_manager_linux.go setupKernelTunables): covered by files
# that already hold the values it wants
mkdir -p "$REAL/sysctl"
while read -r key value; do
  f="$REAL/sysctl/${key//\//.}"
  echo "$value" > "$f"
  mount --bind "$f" "/proc/sys/$key"
done <<'EOF'
vm/overcommit_memory 1
vm/panic_on_oom 0
kernel/panic 10
kernel/panic_on_oops 1
kernel/keys/root_maxkeys 1000000
kernel/keys/root_maxbytes 25000000
EOF

# ------------------------------------------------------------------ cgroups: everything under /tenx-real
for d in /sys/fs/cgroup/*/; do
  [ -d "$d" ] || continue
  mkdir -p "$d$CGROUP_ROOT"
  if [ -f "${d}cpuset.cpus" ] && [ -z "$(cat "$d$CGROUP_ROOT/cpuset.cpus")" ]; then
    cat "${d}cpuset.cpus" > "$d$CGROUP_ROOT/cpuset.cpus"
    cat "${d}cpuset.mems" > "$d$CGROUP_ROOT/cpuset.mems"
  fi
done

# ------------------------------------------------------------------ network namespace
touch "$NETNS"
unshare --net="$NETNS" true
innet() { nsenter --net="$NETNS" "$@"; }
innet ip link set lo up
# the node's address, the host's: kubelet listens there and requires it on one of its interfaces; pods that
# connect to their node's address reach the node, as anywhere
innet ip addr add "$NODE_IP/32" dev lo

# ------------------------------------------------------------------ configuration
rm -rf "$CONF/certs.d"
mkdir -p "$CONF/cni" "$CONF/certs.d" "$REAL/registry" "$REAL/containerd" "$REAL/kubelet" "$REAL/pod-logs" "$REAL/cni/ipam"
cat > "$CONF/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $REAL/registry}, delete: {enabled: true}}
http: {addr: $REGISTRY}
EOF

# every registry host a job may name is mirrored by the local registry, under a path named after the host; an image
# never pushed there is a 404 (the top-level server is the local registry too, so nothing goes to the internet).
# `_default` covers every host without a directory of its own (containerd 1.6.20 honours it: an image of
# registry.example.com fails with "not found" from the local registry, not a DNS error); the hosts of images.list
# and Docker Hub's aliases get their own, and so does registry.local, the project's own images (`make image-push`,
# pushed by `cluster.sh real-push`).
hosts="$(awk '!/^#/ && NF {split($1, p, "/"); print p[1]}' "$HERE/images.list" | sort -u)"
for host in _default registry-1.docker.io index.docker.io registry.local $hosts; do
  mkdir -p "$CONF/certs.d/$host"
  path="$host"; [ "$host" = _default ] && path=_default
  case "$host" in registry-1.docker.io|index.docker.io) path=docker.io ;; esac
  cat > "$CONF/certs.d/$host/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY/v2/$path"]
  capabilities = ["pull", "resolve"]
  override_path = true
EOF
done

cat > "$CONF/containerd.toml" <<EOF
version = 2
root = "$REAL/containerd/root"
state = "/run/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "$REAL/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  # no CAP_SYS_RESOURCE here: a container's oom_score_adj may not go below containerd's own, or runc fails
  restrict_oom_score_adj = true
  disable_apparmor = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CONF/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONF/certs.d"
EOF

cat > "$CONF/cni/10-tenx-real.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "tenx-real",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}],
             "dataDir": "$REAL/cni/ipam"}
  }]
}
EOF

cat > "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: $PKI/kubelet-real.crt
tlsPrivateKeyFile: $PKI/kubelet-real.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
podLogsDir: $REAL/pod-logs
resolvConf: /etc/resolv.conf
registerWithTaints:
- {key: tenx.io/runtime, value: containerd, effect: NoSchedule}
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
crashLoopBackOff: {maxContainerRestartPeriod: 10s}
# Small log files, so the node collector's tests see the kubelet rotate (every 3 s at most), gzip and delete them
# (default 10Mi, 5 files, 10 s).
containerLogMaxSize: 1Mi
containerLogMaxFiles: 3
containerLogMonitorInterval: 3s
EOF

# ------------------------------------------------------------------ start
start() {  # NAME CMD...
  local name="$1"; shift
  "$@" >> "$REAL/logs/$name.log" 2>&1 &
  pids[$name]=$!
  log "started $name (pid ${pids[$name]} in the node's pid namespace, log $REAL/logs/$name.log)"
}
wait_for() {  # WHAT TRIES CMD...
  local what="$1" n="$2" i; shift 2
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out waiting for $what"
}
mkdir -p "$REAL/logs"
# nsenter execs the program: the pid kept is the program's own
rm -f "$SOCK"
start registry nsenter --net="$NETNS" docker-registry serve "$CONF/registry.yml"
start containerd nsenter --net="$NETNS" containerd --config "$CONF/containerd.toml"
wait_for registry 150 innet curl -fsS "http://$REGISTRY/v2/"
wait_for containerd 150 ctr --address "$SOCK" version
# kube-proxy and the ports between the host and the node (network.sh): the kubelet reaches the apiserver through it
start network bash "$HERE/network.sh" "$CONF" "$REAL/logs" "$REAL/sockets" "$BIN" "$PKI" "$NETNS" "$NODE_IP" \
  "$KUBELET_PORT"
wait_for "the apiserver from the node's network namespace" 150 innet curl -sk -o /dev/null https://127.0.0.1:6443/healthz

# the images built by images.sh (an OCI layout per content, one ref per image name): pushed to the local registry
# under <registry host>/<path>, where the hosts.toml mirrors look
while read -r ref content; do
  case "$ref" in ''|\#*) continue ;; esac
  host="${ref%%/*}" rest="${ref#*/}"
  innet skopeo copy --quiet --dest-tls-verify=false "oci:$IMAGES/$content:latest" "docker://$REGISTRY/$host/$rest" \
    || die "pushing $ref to the local registry failed"
done < "$HERE/images.list"
log "images pushed to the local registry"

start kubelet nsenter --net="$NETNS" "$BIN/kubelet" --config="$CONF/kubelet.yaml" --kubeconfig="$PKI/kubelet-real.kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$REAL/kubelet" \
  --node-labels=tenx.io/runtime=containerd --v=1

# supervise: if one part dies the node is broken; end it all (cluster.sh up starts it again)
while :; do
  set +e
  wait -n
  set -e
  [ "$stopping" = 1 ] && continue
  for name in registry containerd network kubelet; do
    if ! kill -0 "${pids[$name]}" 2>/dev/null; then
      log "$name exited; stopping the node (see $REAL/logs/$name.log)"
      shutdown
    fi
  done
done
