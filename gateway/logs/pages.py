"""The paged logs calls: lines ``[from, from+size)`` of an instance's log or of a job's (every instance's, in time
order, each prefixed by ``[instance]``), of one day with ``date``, moved on to ``since`` and stamped with
``timestamps=true`` when asked, and never more than ``GATEWAY_LOG_MAX_BYTES`` of JSON: a bigger page is cut short.
Reading stops as soon as the page is complete."""
from __future__ import annotations

import contextlib
from itertools import islice
from typing import Any

from ..settings import Settings
from ..kube.client import Kube, LogNotAvailable
from ..store import LogStore
from ..jobs.tenancy import Tenant
from .instance import require_instance, require_job
from .reader import InstanceLog, Start
from .text import LOG_MAX_OFFSET, Page, capped, stamped_page


def _stamped(query: dict[str, Any]) -> bool:
    """``since`` or ``timestamps=true``: the page is read with each line's stamp."""
    return query.get("since") is not None or bool(query.get("timestamps"))


def _reach(query: dict[str, Any]) -> int:
    """How far a stamped read may go from ``from``: the page, or with ``since`` on to the log's end (it moves on
    until a line is recent enough, and only a page of lines is kept)."""
    return query["size"] if query["since"] is None else LOG_MAX_OFFSET - query["offset"]


def instance_page(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, instance: str,
                  query: dict[str, Any], settings: Settings) -> Page:
    live = require_instance(kube, archive, tenant, job_name, instance)
    if query["size"] == 0:
        return Page([])
    log = InstanceLog(kube, archive, tenant, job_name, instance, live)
    start = Start(query["offset"], query["date"], settings.log_timezone, settings.log_max_bytes)
    try:
        if _stamped(query):
            rows = islice(log.rows(start, stamped=True), _reach(query))
            return stamped_page(((ts, "", text) for ts, text in rows), query["offset"], query["size"],
                                query["since"], query["timestamps"], settings.log_max_bytes)
        with contextlib.closing(log.rows(start)) as rows:
            return capped((text for _, text in islice(rows, query["size"])), settings.log_max_bytes)
    except LogNotAvailable:  # the container has not started: nothing to read yet
        return Page([])


def job_page(kube: Kube, archive: LogStore, tenant: Tenant, job_name: str, query: dict[str, Any],
             max_bytes: int) -> Page:
    """From the archive, which the collectors fill within a second or two of the lines being written; the page
    walks an index from a keyset cursor and stops reading at the byte cap."""
    if not query["size"]:
        require_job(kube, archive, tenant, job_name)
        return Page([])
    if _stamped(query):
        with contextlib.closing(archive.iter_read_job_stamped(tenant.archive, job_name, day=query["date"],
                                                              offset=query["offset"], size=_reach(query))) as rows:
            page = stamped_page(((ts, f"[{instance}] ", text) for instance, ts, text in rows), query["offset"],
                                query["size"], query["since"], query["timestamps"], max_bytes)
    else:
        with contextlib.closing(archive.iter_read_job(tenant.archive, job_name, day=query["date"],
                                                      offset=query["offset"], size=query["size"])) as rows:
            page = capped((f"[{instance}] {text}" for instance, text in rows), max_bytes)
    if not page.lines:
        require_job(kube, archive, tenant, job_name)
    return page
