"""A reflector: a local copy of one kind of Kubernetes object, kept by LIST once, then WATCH (client-go's
``tools/cache`` reflector, kubespawner's ``reflector.py``).

- LIST in pages, then WATCH from the list's resourceVersion with ``allowWatchBookmarks``; when a watch ends (the
  apiserver closes it every few minutes) the next one starts at the last resourceVersion seen, so steady state
  makes no LIST at all. Only 410 Gone (that version is no longer kept) relists.
- Errors back off exponentially, capped, and the watch resumes from the last resourceVersion (a broken watch is
  not a reason to LIST again); a relist replaces the copy whole and reports what changed in between.
- One owner of the state: only the reflector's thread changes it; readers get an object or a snapshot under a
  lock. Objects are the apiserver's raw JSON dicts (no client models).
- ``on_event(type, obj)`` ("ADDED", "MODIFIED", "DELETED") is called from that thread, in order; it must be quick
  (hand work to a queue). An exception in it is logged and counted, never stops the reflector.

- ``transform(obj)`` (optional) is what is kept instead of the whole dict (the API's watch cache keeps each Job's
  response bytes and a few fields; see ``gateway/kube/cache``); handlers then get the kept value. A kept value that is
  not a dict carries its ``resource_version``. ``on_progress(resource_version)`` is called after every event,
  bookmark and list, once the copy holds it (a reader waiting for a write's version waits on that).
- ``broken_since`` says since when the apiserver has not been reachable (None while it is); ``last_alive`` when it
  was last heard from (the monotonic clock).

Used for pods by the collector and for Jobs and pods by the API's watch cache; nothing in it is specific to a kind
(``path`` names the collection).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, Iterator

from .. import errors
from .client import Kube

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Handler = Callable[[str, dict[str, Any]], None]


def key_of(obj: dict[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace", ""), metadata.get("name", "")


class Backoff:
    """Capped exponential backoff with jitter; ``reset()`` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0):
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next = self.first


class Reflector:
    def __init__(self, kube: Kube, path: str, *, label_selector: str | None = None,
                 field_selector: str | None = None, on_event: Handler | None = None, accept: Callable[[dict[str, Any]], bool] = lambda obj: True,
                 name: str = "reflector", page_size: int = 500, watch_seconds: int = 300,
                 backoff: Backoff | None = None, transform: Callable[[dict[str, Any]], Any] | None = None,
                 on_progress: Callable[[str], None] | None = None, relist_seconds: float | None = None):
        self._kube = kube
        self.path = path
        self.label_selector = label_selector
        self.field_selector = field_selector  # e.g. spec.nodeName=<node>: the node collector's own pods
        self._on_event = on_event
        self._accept = accept  # client-side filter (e.g. a namespace prefix the apiserver cannot select on)
        self.name = name
        self._page_size = page_size
        self._watch_seconds = watch_seconds
        self._backoff = backoff or Backoff()
        self._transform = transform
        self._on_progress = on_progress
        # LIST afresh once a watch ends this long after the last LIST: a small object kept whole (the user table)
        # is then right within that time even if an event were ever lost
        self._relist_seconds = relist_seconds
        self._listed_at = 0.0
        self._items: dict[Key, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.resource_version = ""
        self.synced = threading.Event()  # set once the first LIST is in
        self.settled = threading.Event()  # set once the first LIST is in or has failed: a reader waits no longer
        self.lists = self.watches = self.errors = 0
        self.broken_since: float | None = None
        self.last_alive = 0.0

    # -- readers ---------------------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Any:
        with self._lock:
            return self._items.get((namespace, name))

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # -- the loop --------------------------------------------------------------------------------------------

    def start(self) -> Reflector:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: float | None = None) -> None:
        self._stop.set()
        if wait is not None and self._thread is not None:
            self._thread.join(wait)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        listed = False
        while not self._stop.is_set():
            try:
                if not listed:
                    self._list()
                    listed = True
                    self._backoff.reset()
                while not self._stop.is_set():
                    self._watch()  # returns when the apiserver ends the watch: go on from resource_version
                    if self._relist_seconds is not None and \
                            time.monotonic() - self._listed_at >= self._relist_seconds:
                        listed = False
                        break
            except Kube.Expired:
                log.info("%s: resourceVersion %s expired, relisting", self.name, self.resource_version)
                listed = False  # relist at once: the data is old, not the apiserver unhealthy
                continue
            except (errors.GatewayError, ValueError, OSError) as exc:  # ValueError: a body that is not JSON
                self.errors += 1
                self._broken()
                delay = self._backoff.next()
                log.warning("%s: %s; retrying in %.1f s", self.name, _describe(exc), delay)
                self._stop.wait(delay)
            except Exception:  # noqa: BLE001 - the reflector must outlive any bug in one round
                self.errors += 1
                self._broken()
                delay = self._backoff.next()
                log.exception("%s: unexpected failure; retrying in %.1f s", self.name, delay)
                self._stop.wait(delay)

    def _broken(self) -> None:
        self.settled.set()
        if self.broken_since is None:
            self.broken_since = time.monotonic()

    def _alive(self) -> None:
        self.last_alive = time.monotonic()
        self.broken_since = None

    def _keep(self, obj: dict[str, Any]) -> Any:
        return self._transform(obj) if self._transform is not None else obj

    def _list(self) -> None:
        items: dict[Key, Any] = {}
        token = None
        while True:
            page = self._kube.list_page(self.path, label_selector=self.label_selector, limit=self._page_size,
                                        continue_token=token, field_selector=self.field_selector)
            for obj in page.get("items") or []:
                if self._accept(obj):
                    items[key_of(obj)] = self._keep(obj)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                break
        if not metadata.get("resourceVersion"):
            raise ValueError("the list has no resourceVersion")  # not an apiserver's list: nothing to watch from
        self.lists += 1
        self._listed_at = time.monotonic()
        self._alive()
        with self._lock:
            before, self._items = self._items, items
            self.resource_version = metadata.get("resourceVersion", "")
        for key, obj in items.items():
            old = before.get(key)
            if old is None:
                self._emit("ADDED", obj)
            elif _version(old) != _version(obj):
                self._emit("MODIFIED", obj)
        for key, old in before.items():
            if key not in items:
                self._emit("DELETED", old)
        self._progress()
        self.synced.set()
        self.settled.set()

    def _watch(self) -> None:
        self.watches += 1
        with self._kube.watch(self.path, resource_version=self.resource_version, label_selector=self.label_selector,
                              field_selector=self.field_selector, timeout_seconds=self._watch_seconds) as events:
            self._alive()  # the watch is open: the apiserver answered
            for event in self._until_stopped(events):
                self.last_alive = time.monotonic()
                kind, obj = event.get("type"), event.get("object") or {}
                version = _version(obj)
                if kind == "BOOKMARK":
                    self.resource_version = version or self.resource_version
                    self._progress()
                    continue
                if kind not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                key = key_of(obj)
                kept = None
                with self._lock:
                    if kind == "DELETED":
                        kept = self._items.pop(key, None)
                    elif self._accept(obj):
                        kept = self._items[key] = self._keep(obj)
                    else:  # no longer what the copy keeps (say, a label changed): gone from it
                        kind, kept = "DELETED", self._items.pop(key, None)
                    self.resource_version = version or self.resource_version
                if kept is not None:
                    self._emit(kind, kept)
                self._progress()
                self._backoff.reset()

    def _until_stopped(self, events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            if self._stop.is_set():
                return
            yield event

    def _progress(self) -> None:
        if self._on_progress is not None:
            try:
                self._on_progress(self.resource_version)
            except Exception:  # noqa: BLE001 - as for on_event
                self.errors += 1
                log.exception("%s: progress handler failed", self.name)

    def _emit(self, kind: str, obj: Any) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, obj)
        except Exception:  # noqa: BLE001 - one bad event must not stop the cache
            self.errors += 1
            log.exception("%s: handler failed on %s", self.name, kind)


def _version(obj: Any) -> str:
    if not isinstance(obj, dict):
        return getattr(obj, "resource_version", "")
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.GatewayError) and exc.description:
        return exc.description
    return type(exc).__name__
