"""The local cluster's real kubelet node (containerd, images from the local registry), and the operator settings
that send a gateway's pods there (as ``make run`` does), for the integration tests that need real containers."""
REAL_NODE = "tenx-real"
ON_REAL_NODE = {"GATEWAY_POD_NODE_SELECTOR": "tenx.io/runtime=containerd",
                "GATEWAY_POD_TOLERATIONS": "tenx.io/runtime=containerd:NoSchedule"}
