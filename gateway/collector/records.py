"""Instance records (what happened to each pod, and why) written to the archive by either collector, so they
outlive the pods: once per version of a pod, and once more when it is deleted."""
from __future__ import annotations

from typing import Any, Callable

from .. import timefmt
from ..kube.reflector import key_of
from ..store import LogStore
from ..store.records import instance_record, job_of


class Records:
    def __init__(self, store: LogStore, archived_as: Callable[[str], str]):
        self._store, self._archived_as = store, archived_as
        self._stored: dict[tuple[str, str], str] = {}  # pod -> resourceVersion of its record last stored

    def changed(self, pod: dict[str, Any]) -> None:
        """Store the pod's record unless this version of it is stored already."""
        key, version = key_of(pod), pod["metadata"].get("resourceVersion", "")
        if self._stored.get(key) == version:
            return
        job = job_of(pod)
        if job:
            metadata = pod["metadata"]
            self._store.put_instance(self._archived_as(metadata["namespace"]), job, metadata["name"],
                                     instance_record(pod))
        self._stored[key] = version

    def deleted(self, pod: dict[str, Any]) -> None:
        """A pod that vanished before it finished (its Job was deleted) is finished now, for retention's sake."""
        self._stored.pop(key_of(pod), None)
        job = job_of(pod)
        if not job:
            return
        record = instance_record(pod)
        if not record.get("finished"):
            record = {**record, "finished": timefmt.rfc3339(timefmt.now()), "deleted": True}
        self._store.put_instance(self._archived_as(pod["metadata"]["namespace"]), job, pod["metadata"]["name"],
                                 record)

    def forget_all(self) -> None:
        """Write every record again at its next change (a new leader does not trust what an old one stored)."""
        self._stored.clear()
