"""A pod of job "job" whose container "job" logged TEXTS at STAMPS, as the apiserver and the archive serve it, for
the unit tests of gateway/logs and gateway/streams/follow.py."""
from __future__ import annotations

import contextlib
import datetime as dt

from gateway import errors
from gateway.store import ResumePoint
from gateway.jobs.tenancy import Tenant
from gateway.timefmt import NS

TENANT = Tenant("alice", "tenx-alice", "us")
T0 = 1_795_856_400 * NS  # 2026-11-28T09:00:00Z
STAMPS = ["2026-11-28T09:00:00Z", "2026-11-28T09:00:01.5Z", "2026-11-28T09:00:02.123456789Z", "2026-11-28T09:00:03Z",
          "2026-11-29T00:00:01Z"]
TEXTS = ["zero", "one", "two", "three", "next day"]
NS_OF = [T0, T0 + 1_500_000_000, T0 + 2 * NS + 123_456_789, T0 + 3 * NS, T0 + 54001 * NS]


def query(**given):
    return {"date": None, "offset": 0, "size": 1000, "since": None, "timestamps": False, **given}


class Kube:
    """A pod of job "job" whose container "job" logged TEXTS at STAMPS; pod_log answers as the apiserver does."""

    def __init__(self, pod_exists: bool = True):
        self.pod_exists = pod_exists
        self.asked: list[dict] = []

    def get_pod(self, namespace, name):
        if not self.pod_exists:
            raise errors.NotFound("gone")
        return {"metadata": {"name": name, "labels": {"job-name": "job"}},
                "spec": {"containers": [{"name": "job"}]}, "status": {}}

    @contextlib.contextmanager
    def pod_log(self, namespace, name, *, container, timestamps=False, since_time=None, **_):
        self.asked.append({"timestamps": timestamps, "since_time": since_time})
        kept = [(stamp, text) for stamp, text in zip(STAMPS, TEXTS) if since_time is None or stamp >= since_time]
        body = "".join(f"{stamp} {text}\n" if timestamps else f"{text}\n" for stamp, text in kept).encode()
        yield iter([body[:7], body[7:]])  # a chunk boundary inside the first stamp


class Archive:
    """The archive's calls for a pod that is gone, holding the same lines."""

    def known_instance(self, namespace, job, instance):
        return True

    def log_end(self, key, day=None):
        return ResumePoint(None, 0), 0  # a live pod's log not reached by a collector yet: the pod alone is read

    def iter_read_stamped(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        held = [(ts, text) for ts, text in zip(NS_OF, TEXTS)
                if day is None or dt.datetime.fromtimestamp(ts // NS, dt.timezone.utc).date() == day]
        yield from held[offset:offset + size]

    def iter_read(self, namespace, instance, container, *, day=None, offset=0, size=1000):
        for _, text in self.iter_read_stamped(namespace, instance, container, day=day, offset=offset, size=size):
            yield text

    def iter_read_job_stamped(self, namespace, job, *, day=None, offset=0, size=1000):
        for ts, text in list(self.iter_read_stamped(namespace, "", "", day=day))[offset:offset + size]:
            yield "job-abcde", ts, text

    def instances(self, namespace, job):
        return [{"name": "job-abcde"}]


