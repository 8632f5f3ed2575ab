"""One instance's log, in one numbering however it is read: the paged call, ``follow=true``, before and after the
pod is gone.

The numbering is the archive's: every line of every attempt of the container, in order, the lost-lines markers
included. A running container's page reads the archive up to its end (by index), then only the pod's lines after
that point (``sinceTime`` the last archived stamp, the archived lines at that stamp dropped, exactly as the apiserver
collector resumes): the kubelet rotates a busy container's file, and a read of the pod by offset would count from
the newest file only. The pod alone is read only while the archive holds nothing of the container (no collector
has reached it yet); once the pod is gone, the archive alone.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from itertools import islice
from typing import Iterator

from .. import errors
from ..kube.client import Kube, LogNotAvailable
from ..store import ContainerKey, LogStore, ResumePoint
from ..jobs.tenancy import Tenant
from ..timefmt import day_bounds, ns_of, rfc3339
from .instance import Instance, container_of
from .stamps import parse_stamped, since_time, stamped_within, unseen
from .text import iter_lines, skip_lines

log = logging.getLogger(__name__)

Row = tuple["int | None", str]  # (the line's stamp in ns, when it was read with it; its text)
_TO_THE_END = 1 << 62
UPSTREAM_IDLE_SECONDS = 120.0  # a followed pod log silent this long is reopened (a dead connection is found then)


@dataclass(frozen=True)
class Start:
    """Where a read begins: the line number (of ``day``'s lines, with ``day``), the calendar of days, and how many
    bytes of a line are kept."""
    offset: int
    day: dt.date | None
    timezone: str
    max_line_bytes: int


class InstanceLog:
    def __init__(self, kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str,
                 live: Instance | None):
        self._kube, self._archive, self._tenant, self.live = kube, archive, tenant, live
        container = live.container if live is not None else container_of(job_name)
        self.key = ContainerKey(tenant.archive, job_name, instance, container)

    def archived(self) -> bool:
        """Whether the archive has begun this container's log (its numbering then rules)."""
        point, _ = self._archive.log_end(self.key)
        return point.last_ts_ns is not None

    def rows(self, start: Start, *, stamped: bool = False) -> Iterator[Row]:
        """Every line from ``start`` to the log's present end; with ``stamped``, each with its stamp."""
        if self.live is None:
            yield from self._archived(start.offset, start.day, _TO_THE_END, stamped)
            return
        point, count = self._archive.log_end(self.key, start.day)
        if point.last_ts_ns is None:
            yield from self._pod_alone(start, stamped)
            return
        if start.offset < count:
            yield from self._archived(start.offset, start.day, count - start.offset, stamped)
        if start.day is None or ns_of(day_bounds(start.day, start.timezone)[1]) > point.last_ts_ns:
            yield from self._after(point, start, skip=max(0, start.offset - count))

    def archived_rows(self, start: Start, size: int, *, stamped: bool = False) -> Iterator[Row]:
        """Up to ``size`` archived lines from ``start`` (what follow=true reads as the collector stores them)."""
        return self._archived(start.offset, start.day, size, stamped, whole=False)

    def _archived(self, offset: int, day: dt.date | None, size: int, stamped: bool,
                  whole: bool = True) -> Iterator[Row]:
        key, read = self.key, 0
        for attempt in range(2):
            args = (key.namespace, key.instance, key.container)
            if stamped:
                rows = self._archive.iter_read_stamped(*args, day=day, offset=offset + read, size=size - read)
            else:
                rows = ((None, text) for text in self._archive.iter_read(*args, day=day, offset=offset + read,
                                                                         size=size - read))
            with contextlib.closing(rows):
                for row in rows:
                    read += 1
                    yield row
            if not whole or size == _TO_THE_END or read >= size or attempt:
                return
            self._archive.catch_up()  # the log's end was committed, but the store's search had not shown it yet

    def _after(self, point: ResumePoint, start: Start, skip: int) -> Iterator[Row]:
        """The pod's lines after the archive's end (none if its log cannot be read now: the archive will have
        them)."""
        key = self.key
        try:
            with self._kube.pod_log(self._tenant.namespace, key.instance, container=key.container, timestamps=True,
                                    since_time=since_time(point)) as chunks:
                fresh = unseen(parse_stamped(iter_lines(chunks, start.max_line_bytes)), point)
                rows: Iterator[Row] = ((line.ts_ns, line.text) for line in fresh)
                if start.day is not None:
                    rows = stamped_within(rows, *day_bounds(start.day, start.timezone))
                yield from islice(rows, skip, None)
        except (LogNotAvailable, errors.NotFound) as exc:
            # info, not warning: a container waiting to restart (CrashLoopBackOff) says so on every page read
            log.info("the pod's log of %s/%s past the archive's line %s cannot be read (%s): the page ends at the "
                     "archive's end", key.instance, key.container, point.next_seq, exc)
            return

    def pod_rows(self, start: Start, *, stamped: bool = False, follow: bool = False) -> Iterator[Row]:
        """The pod's log alone, as it numbers it (what a stream follows while nothing of the container is
        archived yet): with ``follow``, on as the container writes until its attempt ends."""
        return self._pod_alone(start, stamped, follow)

    def _pod_alone(self, start: Start, stamped: bool, follow: bool = False) -> Iterator[Row]:
        """The pod's log as it numbers it (the current attempt's lines; of ``day``, from the day's first)."""
        key, cap = self.key, start.max_line_bytes
        bounds = day_bounds(start.day, start.timezone) if start.day is not None else None
        with self._kube.pod_log(self._tenant.namespace, key.instance, container=key.container,
                                timestamps=stamped or bounds is not None,
                                since_time=rfc3339(bounds[0]) if bounds else None, follow=follow,
                                idle_timeout=UPSTREAM_IDLE_SECONDS if follow else None) as chunks:
            if bounds is None:
                lines = iter_lines(skip_lines(chunks, start.offset), cap)
                if stamped:
                    yield from ((line.ts_ns, line.text) for line in parse_stamped(lines))
                else:
                    yield from ((None, text) for text in lines)
            else:
                rows = ((line.ts_ns, line.text) for line in parse_stamped(iter_lines(chunks, cap)))
                yield from islice(stamped_within(rows, *bounds), start.offset, None)
