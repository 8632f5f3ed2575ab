#!/usr/bin/env bash
# Print a kubeconfig that acts as the tenx-gateway ServiceAccount, with a short-lived token.
#
#   deploy/sa-kubeconfig.sh [--duration 1h] [--namespace tenx-gateway] [--service-account tenx-gateway] > sa.kubeconfig
#   KUBECONFIG=sa.kubeconfig kubectl auth can-i --list -n tenx-alice
#
# It uses kubectl (or $KUBECTL) with your current KUBECONFIG / context, which must be allowed to create
# tokens for the ServiceAccount (`kubectl create token`). The server and CA are copied from that context;
# nothing else (in particular none of your own credentials) goes into the output. Use it to check what the
# gateway may do, or to run a gateway outside the cluster with exactly the deployed permissions.
set -euo pipefail

KUBECTL="${KUBECTL:-kubectl}"
namespace=tenx-gateway
service_account=tenx-gateway
duration=1h

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="${2:?}"; shift 2 ;;
    --namespace|-n) namespace="${2:?}"; shift 2 ;;
    --service-account) service_account="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "sa-kubeconfig.sh: unknown argument: $1" >&2; usage ;;
  esac
done

view() { "$KUBECTL" config view --minify --flatten -o "jsonpath=$1"; }
cluster="$(view '{.contexts[0].context.cluster}')"
server="$(view '{.clusters[0].cluster.server}')"
ca="$(view '{.clusters[0].cluster.certificate-authority-data}')"
insecure="$(view '{.clusters[0].cluster.insecure-skip-tls-verify}')"
[ -n "$server" ] || { echo "sa-kubeconfig.sh: no current context in the kubeconfig" >&2; exit 1; }

token="$("$KUBECTL" create token "$service_account" -n "$namespace" --duration "$duration")"

user="system:serviceaccount:$namespace:$service_account"
cat <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: ${cluster:-cluster}
    cluster:
      server: $server
YAML
if [ -n "$ca" ]; then
  echo "      certificate-authority-data: $ca"
elif [ "$insecure" = "true" ]; then
  echo "      insecure-skip-tls-verify: true"
fi
cat <<YAML
users:
  - name: $user
    user:
      token: $token
contexts:
  - name: $service_account@${cluster:-cluster}
    context:
      cluster: ${cluster:-cluster}
      user: $user
      namespace: $namespace
current-context: $service_account@${cluster:-cluster}
YAML
