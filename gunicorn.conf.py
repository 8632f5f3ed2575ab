"""gunicorn settings for tenx-gateway. Every request waits on the apiserver, and a followed log or a watched job
holds its connection for minutes, so greenlets carry the concurrency: a few workers (one per core), each gevent's
event loop with up to GATEWAY_WORKER_CONNECTIONS connections at once (gthread pinned a thread per stream: 500
followers would have needed 500 threads). GATEWAY_WORKER_CLASS=gthread brings the thread pool back."""
import os

# gevent must patch the standard library before anything imports ssl, threading or socket: the master imports the
# gateway's settings check (and with it the Kubernetes client, urllib3 and ssl) below, and a worker inherits those
# modules, so patching only in the worker (gunicorn's default) left ssl half-patched (RecursionError on the first
# TLS connection). The master runs patched too: its loop, signals and metrics listener are gevent-aware.
if (os.environ.get("GATEWAY_WORKER_CLASS") or "gevent") == "gevent":
    from gevent import monkey

    monkey.patch_all()

import atexit  # noqa: E402
import glob  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402


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

# Each user's stream slots (gateway/streams/slots.py): lock files every worker shares, so the per-user cap on
# concurrent streams holds across workers. A fresh directory per gunicorn, removed when the master exits.
if not os.environ.get("TENX_GATEWAY_STREAM_SLOTS_DIR"):
    os.environ["TENX_GATEWAY_STREAM_SLOTS_DIR"] = tempfile.mkdtemp(prefix="tenx-gateway-streams-")
    atexit.register(_remove_metrics_dir, os.environ["TENX_GATEWAY_STREAM_SLOTS_DIR"], os.getpid())

# A bad setting (GATEWAY_*, the region contexts, gunicorn's own variables below) stops gunicorn here, in the master,
# before any worker starts: one line on stderr naming it, exit status 2 (gateway/settings_check.py).
from gateway.settings_check import exit_if_invalid  # noqa: E402

exit_if_invalid(gunicorn=True)

bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("GATEWAY_WORKERS", min(4, multiprocessing.cpu_count())))
# gunicorn's own workers with a send timeout (GATEWAY_SEND_TIMEOUT_SECONDS, gateway/workers.py): a client that
# never reads is dropped instead of holding its answer in the worker's memory
worker_class = {"gevent": "gateway.workers.GeventWorker",
                "gthread": "gateway.workers.ThreadWorker"}[os.environ.get("GATEWAY_WORKER_CLASS") or "gevent"]
worker_connections = int(os.environ.get("GATEWAY_WORKER_CONNECTIONS") or 1000)
threads = int(os.environ.get("GATEWAY_THREADS", 8))  # gthread only
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


def post_worker_init(worker):
    """On SIGTERM, open streams send their ``shutdown`` event and end within a second (gateway/streams/runner.py),
    so the worker's graceful wait ends with them instead of cutting them off after GATEWAY_GRACEFUL_TIMEOUT."""
    import signal

    from gateway.streams import runner
    stop_accepting = worker.handle_exit

    def handle_exit(sig, frame):
        runner.begin_shutdown()
        stop_accepting(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
