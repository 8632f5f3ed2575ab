"""The reflector: LIST once, WATCH from there; 410 Gone relists and reports what changed meanwhile."""
from __future__ import annotations

import threading
import time

from gateway import errors
from gateway.kube.reflector import Backoff, Reflector

from tests.support.fake_kube import FakeKube, pod
from tests.support.harness import wait_until


def wait_for(check, timeout: float = 10.0):
    wait_until(check, timeout, 0.02, what="the condition")


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, kind, obj):
        with self.lock:
            self.events.append((kind, obj["metadata"]["name"]))


def test_list_then_watch_without_relisting():
    kube, seen, progress = FakeKube(), Recorder(), []
    kube.put(pod("a-1", "a"))
    reflector = Reflector(kube, "/api/v1/pods", label_selector="app.kubernetes.io/managed-by=tenx-gateway",
                          on_event=seen, on_progress=progress.append).start()
    try:
        wait_for(reflector.synced.is_set)
        kube.put(pod("b-1", "b"))
        kube.put(pod("b-1", "b", phase="Succeeded"))
        kube.put(pod("legacy-1", "legacy", labels={"job-name": "legacy"}))  # not selected
        kube.delete("tenx-alice", "a-1")
        wait_for(lambda: ("DELETED", "a-1") in seen.events)
        assert seen.events == [("ADDED", "a-1"), ("ADDED", "b-1"), ("MODIFIED", "b-1"), ("DELETED", "a-1")]
        assert reflector.get("tenx-alice", "b-1")["status"]["phase"] == "Succeeded"
        assert [p["metadata"]["name"] for p in reflector.snapshot()] == ["b-1"]
        heard = len(progress)
        wait_for(lambda: len(progress) >= heard + 2)  # bookmarks move the resourceVersion on; still no second LIST
        assert int(reflector.resource_version) == kube.resource_version
        assert kube.lists == ["app.kubernetes.io/managed-by=tenx-gateway"]
    finally:
        reflector.stop()


def test_410_gone_relists_and_reports_the_difference():
    kube, seen = FakeKube(), Recorder()
    kube.put(pod("a-1", "a"))
    kube.put(pod("a-2", "a"))
    reflector = Reflector(kube, "/api/v1/pods", on_event=seen, backoff=Backoff(first=0.01, cap=0.05)).start()
    try:
        wait_for(reflector.synced.is_set)
        reflector_version = reflector.resource_version
        with kube._lock:  # changes the watcher never sees as events: they are compacted away at once
            kube.put(pod("a-3", "a"))
            kube.delete("tenx-alice", "a-1")
            kube.compact()
        wait_for(lambda: len(kube.lists) == 2)
        wait_for(lambda: ("DELETED", "a-1") in seen.events and ("ADDED", "a-3") in seen.events)
        assert sorted(p["metadata"]["name"] for p in reflector.snapshot()) == ["a-2", "a-3"]
        assert reflector.resource_version != reflector_version
    finally:
        reflector.stop()


def test_errors_back_off_and_a_failing_handler_stops_nothing():
    calls = []

    class Flaky(FakeKube):
        def list_page(self, *args, **kwargs):
            calls.append(time.monotonic())
            if len(calls) < 3:
                raise errors.Unavailable("apiserver down")
            return super().list_page(*args, **kwargs)

    kube = Flaky()
    kube.put(pod("a-1", "a"))
    kube.put(pod("a-2", "a"))

    def handler(kind, obj):
        if obj["metadata"]["name"] == "a-1":
            raise RuntimeError("a bug in the handler")

    reflector = Reflector(kube, "/api/v1/pods", on_event=handler, backoff=Backoff(first=0.05, cap=0.2)).start()
    try:
        wait_for(reflector.synced.is_set)
        assert len(calls) == 3 and reflector.errors == 3  # two failed lists, one failing handler call
        assert len(reflector) == 2 and reflector.alive
    finally:
        reflector.stop()


def test_a_broken_watch_resumes_from_its_version_without_a_new_list():
    broken = []

    class Breaking(FakeKube):
        def watch(self, *args, **kwargs):
            if len(broken) < 3:
                broken.append(1)
                raise errors.Unavailable("the watch broke off")
            return super().watch(*args, **kwargs)

    kube, seen = Breaking(), Recorder()
    reflector = Reflector(kube, "/api/v1/pods", on_event=seen, backoff=Backoff(first=0.01, cap=0.05)).start()
    try:
        wait_for(reflector.synced.is_set)
        kube.put(pod("a-1", "a"))
        wait_for(lambda: ("ADDED", "a-1") in seen.events)
        assert len(broken) == 3 and len(kube.lists) == 1
    finally:
        reflector.stop()
