"""gunicorn settings for tenx-gateway. Every request waits on the apiserver, so threads, not processes, carry
the concurrency: a few workers (one per core) each with a pool of threads."""
import multiprocessing
import os

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
# No headers in the access log: the Authorization header carries the token.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
