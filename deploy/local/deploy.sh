#!/usr/bin/env bash
# The gateway deployed into the local cluster as an operator deploys it: `kubectl apply -k` of deploy/ through the
# local overlay (deploy/local/overlay: the image from the local registry, pods on the real node, the OpenSearch
# archive shared by the replicas and the node collectors, NodePorts the local cluster publishes on the host).
#
#   deploy.sh up [--no-build]  bring up the cluster and OpenSearch, build and push the image (unless --no-build:
#                              the one last pushed), apply, wait until every pod is Ready and the API answers
#                              /readyz through its Service; prints each step's time, and the API's URL last
#   deploy.sh down [--all]     delete what runs (the Deployment, the node collectors' DaemonSet, the Services, the
#                              generated ConfigMaps and Secrets); the namespaces, the ServiceAccounts, RBAC,
#                              admission policies and the users Secret stay (the integration tests and `make run`
#                              use them too). --all: `kubectl delete -k` of the whole overlay, as deploy/README.md
#                              says an operator removes it
#   deploy.sh url              the API's URL on the host
#
# The overlay is built into build/deploy-local/ (git-ignored) with what differs per machine: the image's digest and
# the real node's pod log folder (the node collectors' hostPath). Everything else is in deploy/local/overlay/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLUSTER="$HERE/cluster.sh"
OUT="$ROOT/build/deploy-local"
KUBECTL="$ROOT/.local/bin/kubectl"
KUBECONFIG_FILE="$ROOT/.local/kubeconfig"
NAMESPACE=tenx-gateway
NODES_NAMESPACE=tenx-gateway-nodes
REAL_NODE=tenx-real
API_PORT="$(awk '$1 == "node" {print $2; exit}' "$HERE/realnode/ports.list")"  # the API Service's NodePort
URL="http://127.0.0.1:$API_PORT"
METRICS_PORT="$(awk '$1 == "node" && /metrics/ {print $2; exit}' "$HERE/realnode/ports.list")"  # the metrics Service's NodePort
TIMEOUT="${TENX_DEPLOY_TIMEOUT:-600}"  # seconds for the pods to become Ready (a first pull of the image included)

log() { printf '[deploy-local] %s\n' "$*" >&2; }
die() { printf '[deploy-local] ERROR: %s\n' "$*" >&2; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

declare -a timings=()
step() {  # NAME CMD...: run a step, and keep its time for the summary
  local name="$1" t0=$SECONDS; shift
  log "$name ..."
  "$@"
  timings+=("$(printf '%-44s %4d s' "$name" $((SECONDS - t0)))")
}

push_image() {
  "$ROOT/deploy/image/build.sh" >/dev/null
  # shellcheck disable=SC1091
  . "$ROOT/build/image/image.env"
  "$CLUSTER" real-push "oci:$IMAGE_LAYOUT:$IMAGE_TAG" "$IMAGE_NAME:$IMAGE_TAG"
  "$CLUSTER" real-push "oci:$IMAGE_LAYOUT:dev" "$IMAGE_NAME:dev"
}

real_pod_logs() {  # the folder where the real node's kubelet writes pod logs (its podLogsDir), links resolved
  local dir
  dir="$("$CLUSTER" nodes | awk -v n="$REAL_NODE" '$1 == n {print $2}')"
  [ -n "$dir" ] || die "the local cluster has no node $REAL_NODE (TENX_REAL_NODE=0?)"
  readlink -f "$dir"
}

write_overlay() {
  [ -f "$ROOT/build/image/image.env" ] || die "no image built yet: run without --no-build (or make image-push)"
  # shellcheck disable=SC1091
  . "$ROOT/build/image/image.env"
  local logs; logs="$(real_pod_logs)"
  mkdir -p "$OUT"
  cat > "$OUT/kustomization.yaml" <<EOF
# Written by deploy/local/deploy.sh: deploy/ with deploy/local/overlay, and what differs per machine.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../deploy
components:
  - ../../deploy/local/overlay
images:
  - name: $IMAGE_NAME
    digest: "$IMAGE_DIGEST"   # $IMAGE_TAG, pushed by make image-push
patches:
  - patch: |
      apiVersion: apps/v1
      kind: DaemonSet
      metadata: {name: tenx-gateway-node-collector, namespace: $NODES_NAMESPACE}
      spec:
        template:
          spec:
            volumes:
              - name: pod-logs
                hostPath: {path: "$logs"}   # the kubelet's podLogsDir on $REAL_NODE
EOF
}

apply_overlay() {
  kc apply -k "$OUT" >/dev/null
}

# "N/N": how many pods of the label exist, and how many of them are Ready and not on their way out
pods_ready() {  # NAMESPACE SELECTOR
  kc -n "$1" get pods -l "$2" -o \
    'jsonpath={range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
    | awk -F'|' '{n++} $1 == "" && $2 == "True" {r++} END {printf "%d/%d", r, n}'
}

wait_ready() {
  kc -n "$NAMESPACE" rollout status deployment/tenx-gateway --timeout="${TIMEOUT}s" >&2
  kc -n "$NODES_NAMESPACE" rollout status daemonset/tenx-gateway-node-collector --timeout="${TIMEOUT}s" >&2
  # rollout status returns while the old pods are still terminating: wait until only the wanted ones are left
  local replicas nodes deadline=$((SECONDS + TIMEOUT))
  replicas="$(kc -n "$NAMESPACE" get deployment/tenx-gateway -o 'jsonpath={.spec.replicas}')"
  nodes="$(kc -n "$NODES_NAMESPACE" get daemonset/tenx-gateway-node-collector -o 'jsonpath={.status.desiredNumberScheduled}')"
  until [ "$(pods_ready "$NAMESPACE" app.kubernetes.io/name=tenx-gateway)" = "$replicas/$replicas" ] \
      && [ "$(pods_ready "$NODES_NAMESPACE" app.kubernetes.io/name=tenx-gateway-node-collector)" = "$nodes/$nodes" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the pods are not all Ready: kubectl -n $NAMESPACE get pods"
    sleep 1
  done
}

wait_url() {  # both Services from the host answer 200 (kube-proxy programs each NodePort on its own sync)
  local deadline=$((SECONDS + 60)) url
  for url in "$URL/readyz" "http://127.0.0.1:$METRICS_PORT/metrics"; do
    until curl -fsS -m 5 -o /dev/null "$url" 2>/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] || die "$url does not answer 200 (is its NodePort published? see .local/real/logs/network.log)"
      sleep 0.5
    done
  done
}

cmd_up() {
  local build=1 t_all=$SECONDS
  case "${1:-}" in --no-build) build=0 ;; '') ;; *) die "unknown option: $1" ;; esac
  step "cluster (cluster.sh up)" "$CLUSTER" up
  [ "$build" = 0 ] || step "image (make image, real-push)" push_image
  step "OpenSearch (opensearch.sh up)" "$HERE/opensearch/opensearch.sh" up
  step "overlay (build/deploy-local)" write_overlay
  step "kubectl apply -k build/deploy-local" apply_overlay
  step "pods Ready (2 API replicas, node collectors)" wait_ready
  step "$URL/readyz and the metrics through their Services" wait_url
  log "done in $((SECONDS - t_all)) s:"
  local line; for line in "${timings[@]}"; do log "  $line"; done
  kc -n "$NAMESPACE" get pods -o wide >&2
  kc -n "$NODES_NAMESPACE" get pods -o wide >&2
  echo "$URL"
}

cmd_down() {
  local all=0
  case "${1:-}" in --all) all=1 ;; '') ;; *) die "unknown option: $1" ;; esac
  "$CLUSTER" up >/dev/null
  if [ "$all" = 1 ]; then
    write_overlay
    kc delete -k "$OUT" --ignore-not-found >&2
    return
  fi
  kc -n "$NAMESPACE" delete --ignore-not-found deployment/tenx-gateway service/tenx-gateway \
    service/tenx-gateway-metrics poddisruptionbudget/tenx-gateway >&2
  kc -n "$NAMESPACE" delete --ignore-not-found configmap,secret -l app.kubernetes.io/name=tenx-gateway >&2
  kc -n "$NODES_NAMESPACE" delete --ignore-not-found daemonset/tenx-gateway-node-collector >&2
  kc -n "$NODES_NAMESPACE" delete --ignore-not-found configmap,secret \
    -l app.kubernetes.io/name=tenx-gateway-node-collector >&2
  kc -n "$NAMESPACE" wait pod -l app.kubernetes.io/name=tenx-gateway --for=delete --timeout=120s >/dev/null 2>&1 || true
  kc -n "$NODES_NAMESPACE" wait pod -l app.kubernetes.io/name=tenx-gateway-node-collector --for=delete \
    --timeout=120s >/dev/null 2>&1 || true
}

main() {
  local cmd="${1:-}"
  [ "$#" -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    url) echo "$URL" ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
