"""gunicorn settings for tenx-gateway. Every request waits on the apiserver, so threads, not processes, carry
the concurrency: a few workers (one per core) each with a pool of threads."""
import atexit
import glob
import multiprocessing
import os
import shutil
import tempfile


def _remove_metrics_dir(path, master_pid):
    if os.getpid() == master_pid:  # workers inherit atexit handlers when forked; only the master cleans up
        shutil.rmtree(path, ignore_errors=True)


# Metrics from every worker go to files here, summed by the master's metrics listener (gateway/metrics.py,
# GATEWAY_METRICS_BIND; the API port has no /metrics). Set before anything imports
# prometheus_client, which picks its multiprocess mode on import; without the variable, a fresh temp dir that goes
# when the master exits.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tenx-gateway-metrics-")
    atexit.register(_remove_metrics_dir, os.environ["PROMETHEUS_MULTIPROC_DIR"], os.getpid())
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# A bad setting (GATEWAY_*, the region contexts, gunicorn's own variables below) stops gunicorn here, in the master,
# before any worker starts: one line on stderr naming it, exit status 2 (gateway/settings_check.py).
from gateway.settings_check import exit_if_invalid  # noqa: E402

exit_if_invalid(gunicorn=True)

bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("GATEWAY_WORKERS", min(4, multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("GATEWAY_THREADS", 8))
# Above the apiserver read timeout (GATEWAY_KUBE_READ_TIMEOUT, 20 s), so a slow cluster gives a 503, not a killed worker.
timeout = int(os.environ.get("GATEWAY_WORKER_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", 25))
keepalive = 5
# Limits on the request line and headers: the API needs none larger.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GATEWAY_LOG_LEVEL", "info")
# JSON lines for the access, error and app logs; no request headers: the Authorization header carries the token.
logger_class = "gateway.jsonlog.GunicornLogger"


# The API's largest request body (gateway/config.py reads the same variable; keep the default in step).
_MAX_BODY_BYTES = int(os.environ.get("GATEWAY_MAX_BODY_BYTES") or 64 * 1024)


def pre_request(worker, req):
    """Answer with ``Connection: close`` when the app may leave part of the body unread: one over the body limit
    (413) or a chunked one, whose length nobody knows beforehand. gunicorn drains at most 64 KiB of an unread body
    and then drops the connection, even after answering "keep-alive"; a client reusing it would fail its next
    request. An app's own Connection header is ignored by gunicorn; the request's ``force_close`` is not."""
    worker.log.debug("%s %s", req.method, req.path)
    length = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), None)
    chunked = any(name == "TRANSFER-ENCODING" for name, _ in req.headers)
    if chunked or (length is not None and length.isdigit() and int(length) > _MAX_BODY_BYTES):
        req.force_close()


def on_starting(server):
    """Samples left by an earlier run would be added to this one's."""
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


_metrics_server = None  # the master's metrics listener, started by when_ready


def when_ready(server):
    """Serve /metrics from the master, on its own address: kept off the public API port, and answering even when
    every worker is busy. A taken port is logged and the API serves on without metrics (an operator sees the
    scrape target down), rather than refusing to start."""
    global _metrics_server
    from gateway import config, metrics
    bind = config.from_env().metrics_bind
    try:
        _metrics_server = metrics.serve(bind)
    except (OSError, ValueError) as exc:  # taken, or not a host:port (unix sockets are not served)
        server.log.error("metrics listener on %s not started: %s", bind, exc)
        return
    if _metrics_server is not None:
        server.log.info("metrics on http://%s/metrics", bind)


def post_fork(server, worker):
    """A worker inherits the master's metrics socket; it never serves it, so it lets it go at once."""
    if _metrics_server is not None:
        _metrics_server.socket.close()


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
