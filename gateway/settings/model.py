"""The gateway's settings: every one, its default, its bounds (``metadata``), and what it is for.

Every setting is a ``GATEWAY_*`` environment variable (``gateway.settings.from_env``) and is documented in
docs/operators.md, "Configuration"; keep the two in step. gunicorn's own (bind, workers, ...) are here too:
gunicorn.conf.py reads them from the one ``Settings`` its master builds and checks at start.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

IN_CLUSTER = "@in-cluster"
CURRENT_CONTEXT = ""


class InvalidSetting(ValueError):
    """A setting's value the gateway cannot run with; the message is one line: the variable, the value, and
    what it accepts."""

    def __init__(self, name: str, value: Any, accepts: str):
        shown = repr(value) if isinstance(value, str) else str(value)
        super().__init__(f"GATEWAY_{name.upper()}={shown} is not valid; it accepts {accepts}")
        self.setting = name


@dataclass(frozen=True)
class Settings:
    # region name -> kubeconfig context ("" = current context, "@in-cluster" = service account)
    regions: Mapping[str, str] = field(default_factory=lambda: {"us": CURRENT_CONTEXT})
    # where the gateway keeps its own objects (the users Secret); lives in the first region's cluster
    namespace: str = "tenx-gateway"
    users_secret: str = "tenx-gateway-users"
    # seconds a loaded user table is trusted before it is read again
    auth_cache_seconds: float = field(default=5.0, metadata={"min": 0, "max": 3600})
    # failed logins per client address or user name before 429, and the window they are counted in
    auth_failure_limit: int = field(default=10, metadata={"min": 1, "max": 1_000_000})
    auth_failure_window_seconds: float = field(default=60.0, metadata={"min": 1, "max": 86400})
    # X-Forwarded-For entries set by proxies we trust (an Ingress: 1); 0 = use the peer address as the client
    trusted_proxy_hops: int = field(default=0, metadata={"min": 0, "max": 10})
    # gunicorn (gunicorn.conf.py): where it listens, its processes, their kind (gevent: one event loop with up to
    # worker_connections connections each; gthread: threads), the seconds a silent worker lives and a stopping one
    # may finish its requests, and the log level
    bind: str = "127.0.0.1:8080"
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1), metadata={"min": 1, "max": 64})
    worker_class: str = "gevent"
    worker_connections: int = field(default=1000, metadata={"min": 1, "max": 100000})
    threads: int = field(default=8, metadata={"min": 1, "max": 1000})
    worker_timeout: int = field(default=60, metadata={"min": 1, "max": 3600, "unit": "seconds"})
    graceful_timeout: int = field(default=25, metadata={"min": 0, "max": 3600, "unit": "seconds"})
    log_level: str = "info"
    # host:port where gunicorn's master serves /metrics (never on the API port); "off" = no metrics listener
    metrics_bind: str = "127.0.0.1:9090"
    namespace_prefix: str = "tenx-"
    host_volume_root: str = "/tenxcloud/app_data"
    # where job pods may run (gateway/jobs/scheduling.py): nodeSelector "label=value,..." and tolerations
    # "key[=value][:Effect],..."; empty = any untainted node
    pod_node_selector: str = ""
    pod_tolerations: str = ""
    max_body_bytes: int = field(default=64 * 1024, metadata={"min": 1024, "max": 64 * 1024 * 1024})
    # caps on what one create may ask for (job.json); over a cap is a 400 that names the field and the cap
    job_max_parallelism: int = field(default=10, metadata={"min": 1})
    job_max_completions: int = field(default=100, metadata={"min": 1})
    job_max_containers: int = field(default=5, metadata={"min": 1})
    # entries of a container's command, and of its args
    job_max_command_items: int = field(default=256, metadata={"min": 1})
    job_max_env_vars: int = field(default=128, metadata={"min": 0})
    # UTF-8 bytes of one container's command, args and env names and values together
    job_max_container_bytes: int = field(default=32 * 1024, metadata={"min": 1})
    # each user namespace's ResourceQuota: non-finished pods, Job objects (finished ones count until deleted),
    # and the CPU and memory all its pods may request (one container's limits may not pass these either)
    tenant_quota_pods: int = field(default=20, metadata={"min": 1})
    tenant_quota_jobs: int = field(default=100, metadata={"min": 1})
    tenant_quota_cpu: str = field(default="8", metadata={"quantity": True})
    tenant_quota_memory: str = field(default="16Gi", metadata={"quantity": True})
    # the LimitRange's defaults for a container whose job.json names none: limits, and the requests the
    # scheduler reserves (small, so many short jobs fit a node; limits still bound what one may use)
    tenant_default_cpu: str = field(default="500m", metadata={"quantity": True})
    tenant_default_memory: str = field(default="512Mi", metadata={"quantity": True})
    tenant_default_cpu_request: str = field(default="10m", metadata={"quantity": True})
    tenant_default_memory_request: str = field(default="32Mi", metadata={"quantity": True})
    # job queueing: "" = none (a job's pods start at once, the quota holds back what is over it); "kueue" = each
    # user namespace gets a LocalQueue on this ClusterQueue and jobs wait in it, suspended, until Kueue admits them
    queue: str = ""
    queue_cluster_queue: str = "tenx-gateway"
    # egress the tenants' NetworkPolicy blocks: CIDRs, and "@apiserver" for the Kubernetes API's addresses
    tenant_egress_deny: str = "169.254.169.254/32,fd00:ec2::254/128,@apiserver"
    log_timezone: str = "UTC"
    log_default_size: int = field(default=1000, metadata={"min": 1, "max": 1_000_000})
    log_max_size: int = field(default=10000, metadata={"min": 1, "max": 1_000_000})
    # the most bytes of JSON one logs call sends (a longer page is cut short, a longer line cut)
    log_max_bytes: int = field(default=4 * 1024 * 1024, metadata={"min": 1024, "max": 1024**3})
    # the most jobs one list call returns (the apiserver's `limit`); more are left out and the body says so
    list_max_jobs: int = field(default=10000, metadata={"min": 1, "max": 1_000_000})
    # (connect, read) seconds for every apiserver call
    kube_connect_timeout: float = field(default=3.0, metadata={"min": 0.1, "max": 300})
    kube_read_timeout: float = field(default=20.0, metadata={"min": 0.1, "max": 3600})
    retry_after_seconds: int = field(default=5, metadata={"min": 1, "max": 3600})
    # the log archive: a store URL (sqlite:///path or postgresql://...); empty = SQLite in data_dir
    archive_url: str = ""
    data_dir: str = "/var/lib/tenx-gateway"
    archive_retention_days: int = field(default=30, metadata={"min": 1, "max": 36500})
    collector_poll_seconds: float = field(default=1.0, metadata={"min": 0.05, "max": 3600})
    # the collector: streams followed at once (more wait in a queue), its health/metrics port (0 = none), the
    # Lease's duration, and the archive lag past which the API's /readyz says "archive lagging"
    collector_max_streams: int = field(default=2000, metadata={"min": 1, "max": 100000})
    collector_port: int = field(default=0, metadata={"min": 0, "max": 65535})
    # the address the collectors' listener binds (the Deployment and the node collectors' DaemonSet set 0.0.0.0,
    # for the kubelet's probes)
    collector_host: str = "127.0.0.1"
    collector_lease_seconds: float = field(default=15.0, metadata={"min": 3, "max": 600})
    archive_lag_ready_seconds: float = field(default=60.0, metadata={"min": 1})
    # the node collector (``collect --node``): where the kubelet keeps pod logs, and the lines a second one
    # container, and all of one namespace's containers on the node, are archived at most (more wait in the files)
    collector_pod_logs_dir: str = "/var/log/pods"
    collector_container_lines_per_second: float = field(default=50_000.0, metadata={"min": 1})
    collector_namespace_lines_per_second: float = field(default=100_000.0, metadata={"min": 1})
    # seconds /readyz, /v1/status and /v1/regions wait for each region's apiserver to answer GET /version
    readiness_timeout: float = field(default=2.0, metadata={"min": 0.1, "max": 60})
    # the API's watch cache of Jobs and their pods (gateway/kube/cache/): on/off; how long a broken watch may still be
    # answered from (past it, reads go to the apiserver); how long a read waits for the cache to reach a write
    watch_cache: bool = True
    cache_stale_seconds: float = field(default=10.0, metadata={"min": 1, "max": 3600})
    cache_wait_seconds: float = field(default=2.0, metadata={"min": 0, "max": 60})
    # streams (follow=true logs, watch): concurrent streams per user (one more is 429), a ": keepalive" comment
    # every heartbeat seconds, the end of a stream that sent nothing but heartbeats for idle seconds or that ran
    # for max seconds (event "shutdown"; the client resumes), and how long a stream token may open a stream
    stream_max_per_user: int = field(default=20, metadata={"min": 1, "max": 10000})
    stream_heartbeat_seconds: float = field(default=5.0, metadata={"min": 0.1, "max": 300})
    stream_idle_seconds: float = field(default=900.0, metadata={"min": 1, "max": 86400})
    stream_max_seconds: float = field(default=3600.0, metadata={"min": 1, "max": 604800})
    stream_token_seconds: int = field(default=60, metadata={"min": 5, "max": 3600})
    # ordinary calls (all but streams) of one user in progress at once on one host, counted until the answer's
    # last byte is sent (one more is 429): what clients that never read can hold of the workers' memory
    requests_max_per_user: int = field(default=32, metadata={"min": 1, "max": 100000})
    # a client that takes no 64 KiB of an answer within this long is dropped (streams included)
    send_timeout_seconds: float = field(default=30.0, metadata={"min": 1, "max": 3600})
    # region name -> the display_name /v1/regions shows (a region not listed shows its name)
    region_display_names: Mapping[str, str] = field(default_factory=lambda: {"us": "North America"})

    @property
    def default_region(self) -> str:
        return next(iter(self.regions))

    @property
    def archive_store_url(self) -> str:
        return self.archive_url or f"sqlite:///{os.path.join(os.path.abspath(self.data_dir), 'archive.db')}"
