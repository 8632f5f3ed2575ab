"""The log archive in OpenSearch: for installs whose operators already run a search cluster for logs.

Layout (``<p>`` is the prefix, ``tenx-logs-`` unless the URL names another):

- ``<p>YYYY.MM.DD``: one document per line, in the index of its day in the log timezone (the original's logstash
  daily indices), with the stream's identity (namespace, job, instance, container, attempt), ``@timestamp``,
  ``ts_ns``, ``seq`` (its number in the container's whole log) and ``day_seq`` (its number within the day). The id
  is ``<stream>/<seq>``, so a retried bulk or a second writer replaces a line, never adds one; every line of a
  stream is routed to one shard, so a page reads one shard. Only what the store filters on is indexed, only what it
  sorts on has doc values (``LINE_MAPPING``): indexing is most of what an append costs the cluster.
- ``<p>meta-streams``: one document per container (id ``namespace/instance/container``): its numbering so far, the
  lines each day holds, and the fencing token. It is read by id (real time) before every page and append.
- ``<p>meta-instances`` (records), ``<p>meta-heartbeats`` (one per region).

Fencing: an append reads the stream's document, refuses a token older than the one stored (``Deposed``), writes
the lines with the token as their external version (``external_gte``), then commits the new numbering with
``if_seq_no``/``if_primary_term``. What that guarantees, with no transaction across documents: (1) a deposed writer
never replaces a line a newer leader wrote (its version is lower: that bulk item fails, and the append raises
``Deposed``); (2) of two writers that read the same numbering, only one commits it, the other gets ``Deposed`` or
``StreamMoved``; (3) lines a loser wrote beyond the committed end are not served by instance pages (they stop at
the committed end) and are replaced when the winner, reading the same log from the same point, reaches them. A
job-level page may show such a line for that while. A writer that dies between its bulk and its commit leaves the
same kind of uncommitted lines; whoever resumes rewrites them.

Reads: an instance's page is a range on ``seq`` or ``day_seq`` (``from`` never reaches OpenSearch, so its
``max_result_window`` does not apply and a deep page costs what the first does); a job's page is a ``search_after``
walk on (day, ts_ns, stream order, stream, seq) from a remembered cursor. What the collector itself reads (a
stream's numbering, resume point, fence) is read by id, in real time; pages are searches, which see a line once
its index has refreshed (``refresh_interval``, 1 s): the logs calls read the archive after the pod is gone, and the
job-level call already trails the live log. ``?refresh=wait_for`` makes every append wait for that refresh and
``?refresh=true`` forces one (read-your-writes, as the SQL stores; the store tests use it), at the cost of ingest.

Retention deletes whole daily indices (``prune``), then fixes the streams' first line and the records; an ISM
policy could delete the indices but not keep the numbering and records in step, and needs a plugin.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from ..timefmt import DayClock
from .base import ContainerKey, Deposed, LogLine, LogStore, Numbered, ResumePoint, StreamMoved, StreamState, check_page, number_lines
from .cursors import PageCursors

log = logging.getLogger(__name__)

SCHEMES = ("opensearch://", "opensearchs://", "http://", "https://")
DEFAULT_PREFIX = "tenx-logs-"
CHUNK = 1000  # lines per search while a page streams
BULK = 5000  # lines per bulk request
WINDOW = 10_000  # OpenSearch's default index.max_result_window
K = {"type": "keyword"}
LONG = {"type": "long"}
# A line's fields are indexed only as far as the store filters or sorts on them (indexing is most of what an
# append costs the cluster): terms and ranges get an index, sort keys doc values. The rest (instance, container,
# attempt, text) is kept in _source alone. @timestamp is for operators' own searches (Dashboards): doc values,
# which still answer its range queries and date histograms, without a points index. Daily indices made before
# this mapping keep theirs (everything indexed); reads are the same queries on both.
FILTER = {"type": "keyword", "doc_values": False}  # term filters only
SORT_ONLY = {"index": False}  # doc values only
LINE_MAPPING = {"dynamic": False, "properties": {
    "namespace": FILTER, "job": FILTER,  # a job's pages, delete_job, delete_namespace
    "stream": K, "seq": LONG, "day_seq": LONG,  # an instance's pages (term, range, sort); a job's sort
    "stream_no": {**LONG, **SORT_ONLY}, "day": {"type": "integer", **SORT_ONLY}, "ts_ns": {**LONG, **SORT_ONLY},
    "@timestamp": {"type": "date", "format": "epoch_millis", **SORT_ONLY},
    "text": {"type": "keyword", "index": False, "doc_values": False}}}
META = {
    "streams": {"dynamic": False, "properties": {
        "namespace": K, "job": K, "instance": K, "container": K, "stream": K, "stream_no": LONG, "fence": LONG,
        "first_day": K, "has_lines": {"type": "boolean"}, "days": {"type": "object", "enabled": False}}},
    "instances": {"dynamic": False, "properties": {
        "namespace": K, "job": K, "instance": K, "key": K, "created": K, "finished_day": K,
        "record": {"type": "object", "enabled": False}}},
    "heartbeats": {"dynamic": False, "properties": {"region": K}},
    "marks": {"dynamic": False, "properties": {"region": K}},
}


def parse_url(url: str) -> dict[str, Any]:
    """``opensearch[s]://[user:password@]host[:port][/prefix][?ca_certs=&verify=&shards=&replicas=&refresh=
    &refresh_interval=&template=]`` (``http(s)://`` alike) -> client and store options."""
    if not url.startswith(SCHEMES):
        raise ValueError(f"not an OpenSearch URL: {url.split('://')[0]!r}")
    parts = urlsplit(url)
    tls = parts.scheme in ("opensearchs", "https")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    prefix = unquote(parts.path.lstrip("/")) or DEFAULT_PREFIX
    if prefix != prefix.lower() or any(c in prefix for c in ' "*\\<|,>/?#:'):
        raise ValueError(f"index prefix {prefix!r}: lowercase, without spaces or any of \"*\\<|,>/?#:")
    refresh = query.get("refresh", "false")
    if refresh not in ("wait_for", "true", "false"):
        raise ValueError(f"refresh={refresh!r}: use wait_for, true or false")
    client: dict[str, Any] = {
        "hosts": [{"host": parts.hostname or "localhost", "port": parts.port or 9200}],
        "use_ssl": tls, "verify_certs": query.get("verify", "true") != "false",
        "ssl_show_warn": False, "timeout": float(query.get("timeout", 30)), "max_retries": 3,
        "retry_on_timeout": True, "pool_maxsize": int(query.get("pool", 16)),
    }
    if parts.username:
        client["http_auth"] = (unquote(parts.username), unquote(parts.password or ""))
    if query.get("ca_certs"):
        client["ca_certs"] = query["ca_certs"]
    settings = {"number_of_shards": int(query.get("shards", 1)), "refresh_interval": query.get("refresh_interval",
                                                                                                "1s")}
    if "replicas" in query:
        settings["number_of_replicas"] = int(query["replicas"])
    return {"client": client, "prefix": prefix, "settings": settings, "refresh": refresh,
            "template": query.get("template", "true") != "false"}


def _day_key(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


class OpenSearchStore(LogStore):
    def __init__(self, url: str, timezone: str = "UTC") -> None:
        from opensearchpy import OpenSearch  # here, so the SQL stores never need the client

        options = parse_url(url)
        # The client logs every request at INFO: thousands a minute from the collector. Failures stay (WARNING).
        logging.getLogger("opensearch").setLevel(logging.WARNING)
        self.timezone = timezone
        DayClock(timezone)  # an unknown timezone fails here, not at the first append
        self.prefix, self._refresh = options["prefix"], options["refresh"]
        self.streams_index, self.instances_index, self.heartbeats_index, self.marks_index = (
            f"{self.prefix}meta-{name}" for name in ("streams", "instances", "heartbeats", "marks"))
        self.lines_pattern = f"{self.prefix}*,-{self.prefix}meta-*"
        self._client = OpenSearch(**options["client"], serializer=_serializer())
        self._locks = [threading.Lock() for _ in range(64)]
        self._cursors = PageCursors()
        try:
            self._prepare(options["settings"], options["template"])
        except BaseException:
            self._client.close()
            raise

    def _prepare(self, settings: dict[str, Any], template: bool) -> None:
        from opensearchpy.exceptions import AuthorizationException, RequestError

        if template:
            body = {"index_patterns": [f"{self.prefix}*"], "priority": 100,
                    "template": {"settings": {"index": settings}, "mappings": LINE_MAPPING},
                    "_meta": {"owner": "tenx-gateway"}}
            try:
                self._client.indices.put_index_template(name=f"{self.prefix}template", body=body)
            except AuthorizationException:
                log.warning("log archive: may not put the index template %stemplate; using the one in place",
                            self.prefix)
        for name, mapping in META.items():
            index = f"{self.prefix}meta-{name}"
            if not self._client.indices.exists(index=index):
                with contextlib.suppress(RequestError):  # created meanwhile by another replica
                    self._client.indices.create(index=index, body={"mappings": mapping})

    # -- writes ------------------------------------------------------------------------------------------

    def append(self, key: ContainerKey, lines: Sequence[LogLine], *, attempt: int = 0, fence: int | None = None,
               expect_next: int | None = None, position: dict[str, Any] | None = None) -> None:
        if not lines and position is None:
            return
        stream = _stream_id(key.namespace, key.instance, key.container)
        with self._locks[hash(stream) % len(self._locks)]:  # this process's writers take turns per stream
            doc, version = self._state(stream)
            if doc is None:
                doc, version = self._create_stream(key, stream)
            stored_fence = doc.get("fence", 0)
            if fence is not None and fence < stored_fence:
                raise Deposed(f"stream {key.instance}/{key.container} is fenced at {stored_fence}, "
                              f"this writer holds {fence}")
            if expect_next is not None and doc["next_seq"] != expect_next:
                raise StreamMoved(f"stream {key.instance}/{key.container} is at line {doc['next_seq']}, "
                                  f"not {expect_next}")
            days = doc.setdefault("days", {})
            if not lines:  # only the writer's position moves; the stream's attempt stays its last line's
                doc.update(position=position, fence=max(stored_fence, fence or 0))
                self._commit(stream, doc, version, fence)
                return
            state = StreamState(doc["next_seq"], dt.date.fromisoformat(doc["cur_day"]) if doc.get("cur_day") else None,
                                doc.get("next_day_seq", 0), doc.get("last_ts_ns"), doc.get("lines_at_last_ts", 0))
            numbered, after = number_lines(lines, state, DayClock(self.timezone),
                                           lambda day: days.get(day.isoformat(), {}).get("n", 0))
            token = max(stored_fence, fence or 0)
            self._bulk_lines(key, stream, doc["stream_no"], attempt, token, numbered)
            for day, seqs, day_seqs, _, _ in numbered.runs():
                span = days.setdefault(day.isoformat(), {"lo": seqs[0]})
                span["n"], span["hi"] = day_seqs[-1] + 1, seqs[-1] + 1
            doc.update(next_seq=after.next_seq, cur_day=after.day.isoformat() if after.day else None,
                       next_day_seq=after.next_day_seq, last_ts_ns=after.last_ts_ns,
                       lines_at_last_ts=after.lines_at_last_ts, attempt=attempt, fence=token, has_lines=True,
                       first_day=min(days), position=position)
            self._commit(stream, doc, version, fence)

    def _create_stream(self, key: ContainerKey, stream: str) -> tuple[dict[str, Any], tuple[int, int]]:
        from opensearchpy.exceptions import ConflictError

        doc = {"namespace": key.namespace, "job": key.job, "instance": key.instance, "container": key.container,
               "stream": stream, "stream_no": time.time_ns(), "first_seq": 0, "next_seq": 0, "next_day_seq": 0, "fence": 0,
               "lines_at_last_ts": 0, "has_lines": False, "days": {}}
        try:  # containers() and known_instance() find streams by search, after the refresh
            self._client.index(index=self.streams_index, id=stream, body=doc, op_type="create",
                               refresh=self._refresh)
        except ConflictError:
            pass  # another writer created it first
        found, version = self._state(stream)
        assert found is not None
        return found, version

    def _bulk_lines(self, key: ContainerKey, stream: str, stream_no: int, attempt: int, version: int,
                    lines: Numbered) -> None:
        head = {"namespace": key.namespace, "job": key.job, "instance": key.instance, "container": key.container,
                "stream": stream, "stream_no": stream_no, "attempt": attempt}
        items = self._bulk_items(stream, head, version, lines)
        chunks = [items[i:i + BULK] for i in range(0, len(items), BULK)]
        for chunk in chunks:  # a large append in several requests; refreshed once, at the end
            self._bulk(key, b"".join(chunk), self._refresh if len(chunks) == 1 else "false")
        if len(chunks) > 1 and self._refresh != "false":
            self._client.indices.refresh(index=",".join(sorted({self._day_index(day) for _, day, _ in lines.days})))

    def _bulk_items(self, stream: str, head: dict, version: int, lines: Numbered) -> list[bytes]:
        """Each line's action and document, as bulk NDJSON. What every line of a day shares is serialized once;
        per line only its numbers and its text are."""
        quoted = orjson.dumps(stream)
        items: list[bytes] = []
        for day, seqs, day_seqs, stamps, texts in lines.runs():
            action = (b'{"index":{"_index":%s,"routing":%s,"version":%d,"version_type":"external_gte","_id":"%s/'
                      % (orjson.dumps(self._day_index(day)), quoted, version, quoted[1:-1]))
            source = orjson.dumps({**head, "day": _day_key(day)})[:-1] + b',"seq":'
            dumps = orjson.dumps
            items.extend(b'%s%d"}}\n%s%d,"day_seq":%d,"ts_ns":%d,"@timestamp":%d,"text":%s}\n'
                         % (action, seq, source, seq, day_seq, ts, ts // 1_000_000, dumps(text))
                         for seq, day_seq, ts, text in zip(seqs, day_seqs, stamps, texts))
        return items

    def _day_index(self, day: dt.date) -> str:
        return f"{self.prefix}{day:%Y.%m.%d}"

    def _bulk(self, key: ContainerKey, body: bytes, refresh: str) -> None:
        for attempt_no in range(5):
            result = self._client.bulk(body=body, refresh=refresh,
                                       params={"filter_path": "errors,items.*.status,items.*.error"})
            if not result.get("errors"):
                return
            statuses = [next(iter(item.values())) for item in result["items"]]
            failed = [s for s in statuses if s.get("status", 200) >= 300]
            if any(s["status"] == 409 for s in failed):
                raise Deposed(f"stream {key.instance}/{key.container}: a newer writer already wrote some of "
                              "these lines")
            if not all(s["status"] == 429 for s in failed) or attempt_no == 4:
                raise RuntimeError(f"log archive bulk failed: {failed[0].get('error')}")
            time.sleep(0.2 * 2 ** attempt_no)  # the cluster is busy: the whole batch again (idempotent)

    def _commit(self, stream: str, doc: dict[str, Any], version: tuple[int, int], fence: int | None) -> None:
        from opensearchpy.exceptions import ConflictError

        try:
            self._client.index(index=self.streams_index, id=stream, body=doc, if_seq_no=version[0],
                               if_primary_term=version[1])
        except ConflictError:
            now, _ = self._state(stream)
            if now is not None and fence is not None and now.get("fence", 0) > fence:
                raise Deposed(f"stream {stream} was fenced at {now['fence']} meanwhile") from None
            raise StreamMoved(f"stream {stream} was appended to meanwhile") from None

    def _state(self, stream: str) -> tuple[dict[str, Any] | None, tuple[int, int]]:
        found = self._client.get(index=self.streams_index, id=stream, ignore=404)  # absent: no warning logged
        if not found.get("found"):
            return None, (0, 0)
        return found["_source"], (found["_seq_no"], found["_primary_term"])

    def put_instance(self, namespace: str, job: str, instance: str, record: dict[str, Any]) -> None:
        finished = DayClock(self.timezone).stamp_day(record.get("finished"))
        self._client.index(index=self.instances_index, id=f"{namespace}/{job}/{instance}", refresh="wait_for",
                           body={"namespace": namespace, "job": job, "instance": instance,
                                 "key": f"{namespace}/{job}/{instance}", "created": record.get("created"),
                                 "finished_day": finished.isoformat() if finished else None, "record": record})

    def delete_job(self, namespace: str, job: str) -> int:
        return self._delete([{"term": {"namespace": namespace}}, {"term": {"job": job}}])

    def delete_namespace(self, namespace: str) -> int:
        return self._delete([{"term": {"namespace": namespace}}])

    def _delete(self, filters: list[dict]) -> int:
        query = {"bool": {"filter": filters}}
        lines = self._delete_matching(self.lines_pattern, query)
        self._delete_matching(self.streams_index, query)
        records = self._delete_matching(self.instances_index, query)
        self._cursors.clear()
        return lines + records

    def _delete_matching(self, index: str, query: dict) -> int:
        """Search and bulk-delete until nothing matches: ``_delete_by_query`` lives in the reindex module, which a
        minimal cluster (this project's local one) lacks."""
        deleted = 0
        self._client.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
        while True:
            hits = self._search(index=index, body={"size": 5000, "_source": False, "query": query},
                                       ignore_unavailable=True, allow_no_indices=True)["hits"]["hits"]
            if not hits:
                return deleted
            body = bytearray()
            for hit in hits:
                action = {"_index": hit["_index"], "_id": hit["_id"]}
                if hit.get("_routing"):
                    action["routing"] = hit["_routing"]
                body += orjson.dumps({"delete": action}) + b"\n"
            result = self._client.bulk(body=bytes(body), refresh=True)
            deleted += sum(1 for item in result["items"] if item["delete"].get("result") == "deleted")

    def prune(self, older_than: dt.date) -> int:
        self.analyze()
        days = self._client.indices.get_alias(index=self.lines_pattern, allow_no_indices=True,
                                              ignore_unavailable=True)
        old = sorted(name for name in days if _index_day(name, self.prefix) is not None
                     and _index_day(name, self.prefix) < older_than)
        lines = 0
        if old:
            lines = sum(self._client.count(index=name)["count"] for name in old)
            self._client.indices.delete(index=",".join(old))
        cutoff = older_than.isoformat()
        for hit in self._scan(self.streams_index, {"range": {"first_day": {"lt": cutoff}}}, False):
            self._prune_stream(hit["_id"], cutoff)
        self._client.indices.refresh(index=self.streams_index)
        records = 0
        for hit in self._scan(self.instances_index, {"range": {"finished_day": {"lt": cutoff}}},
                              ["namespace", "instance"]):
            src = hit["_source"]
            if not self._count(self.streams_index, [{"term": {"namespace": src["namespace"]}},
                                                    {"term": {"instance": src["instance"]}},
                                                    {"term": {"has_lines": True}}]):
                self._client.delete(index=self.instances_index, id=hit["_id"], refresh=True)
                records += 1
        for hit in self._scan(self.streams_index, {"term": {"has_lines": False}}, ["namespace", "job", "instance"]):
            src = hit["_source"]
            if not self._count(self.instances_index, [{"term": {f: src[f]}} for f in ("namespace", "job",
                                                                                      "instance")]):
                with contextlib.suppress(Exception):
                    self._client.delete(index=self.streams_index, id=hit["_id"], refresh=True)
        return lines + records

    def _prune_stream(self, stream: str, cutoff: str) -> None:
        from opensearchpy.exceptions import ConflictError

        for _ in range(10):  # an append may commit in between: read again and redo
            doc, version = self._state(stream)
            if doc is None:
                return
            days = {day: span for day, span in doc.get("days", {}).items() if day >= cutoff}
            doc["days"] = days
            doc["first_seq"] = min((span["lo"] for span in days.values()), default=doc["next_seq"])
            doc["has_lines"] = doc["first_seq"] < doc["next_seq"]
            doc["first_day"] = min(days, default=None)
            with self._locks[hash(stream) % len(self._locks)]:
                try:
                    self._client.index(index=self.streams_index, id=stream, body=doc, if_seq_no=version[0],
                                       if_primary_term=version[1])
                    return
                except ConflictError:
                    continue

    def heartbeat(self, region: str, holder: str, lag_seconds: float) -> None:
        self._client.index(index=self.heartbeats_index, id=region, refresh=True,
                           body={"region": region, "holder": holder, "beat": time.time(), "lag": float(lag_seconds)})

    def heartbeats(self) -> dict[str, tuple[float, float]]:
        now = time.time()
        hits = self._search(index=self.heartbeats_index, body={"size": 1000, "query": {"match_all": {}}})
        return {h["_source"]["region"]: (max(0.0, now - h["_source"]["beat"]), h["_source"]["lag"])
                for h in hits["hits"]["hits"]}

    def raise_write_mark(self, region: str, version: int) -> None:
        self._update_mark(region, lambda mark: mark["version"] < version,
                          lambda mark: {**mark, "version": version, "raised": time.time()})

    def doubt_writes(self, region: str, until: float) -> None:
        self._update_mark(region, lambda mark: mark["doubt_until"] < until,
                          lambda mark: {**mark, "doubt_until": until})

    def write_mark(self, region: str) -> tuple[int, float, float]:
        mark, _ = self._mark(region)
        return mark["version"], mark["raised"], mark["doubt_until"]

    def _mark(self, region: str) -> tuple[dict[str, Any], tuple[int, int] | None]:
        found = self._client.get(index=self.marks_index, id=region, ignore=404)  # by id: real time
        if not found.get("found"):
            return {"region": region, "version": 0, "raised": 0.0, "doubt_until": 0.0}, None
        return found["_source"], (found["_seq_no"], found["_primary_term"])

    def _update_mark(self, region: str, needed, changed) -> None:
        from opensearchpy.exceptions import ConflictError

        for _ in range(20):  # other replicas raise it too: read, change, write if unchanged meanwhile
            mark, version = self._mark(region)
            if not needed(mark):
                return
            try:
                if version is None:
                    self._client.index(index=self.marks_index, id=region, body=changed(mark), op_type="create")
                else:
                    self._client.index(index=self.marks_index, id=region, body=changed(mark),
                                       if_seq_no=version[0], if_primary_term=version[1])
                return
            except ConflictError:
                continue
        raise RuntimeError(f"the write mark of {region} kept changing under this write")

    def max_fence(self) -> int:
        self._client.indices.refresh(index=self.streams_index)
        found = self._search(index=self.streams_index, body={
            "size": 0, "aggs": {"top": {"max": {"field": "fence"}}}})
        return int(found["aggregations"]["top"]["value"] or 0)

    # -- reads -------------------------------------------------------------------------------------------

    def resume_point(self, key: ContainerKey) -> ResumePoint:
        doc, _ = self._state(_stream_id(key.namespace, key.instance, key.container))
        if doc is None:
            return ResumePoint(None, 0)
        if doc.get("last_ts_ns") is None:
            return ResumePoint(None, 0, position=doc.get("position"))
        return ResumePoint(doc["last_ts_ns"], doc["lines_at_last_ts"], doc.get("attempt"), doc["next_seq"],
                           doc.get("position"))

    def log_end(self, key: ContainerKey, day: dt.date | None = None) -> tuple[ResumePoint, int]:
        doc, _ = self._state(_stream_id(key.namespace, key.instance, key.container))  # by id: real time
        if doc is None:
            return ResumePoint(None, 0), 0
        if doc.get("last_ts_ns") is None:
            point = ResumePoint(None, 0, position=doc.get("position"))
        else:
            point = ResumePoint(doc["last_ts_ns"], doc["lines_at_last_ts"], doc.get("attempt"), doc["next_seq"],
                                doc.get("position"))
        if day is None:
            return point, doc["next_seq"] - doc.get("first_seq", 0)
        return point, doc.get("days", {}).get(day.isoformat(), {}).get("n", 0)

    def catch_up(self) -> None:
        self._client.indices.refresh(index=self.lines_pattern, ignore_unavailable=True, allow_no_indices=True)

    def _page_query(self, namespace: str, instance: str, container: str, day: dt.date | None, offset: int,
                    size: int) -> tuple[str, str, str, int, int, int] | None:
        """(indices, stream, field, low, high, committed end) of a page, from the stream's document; None if
        the page is empty."""
        check_page(offset, size)
        stream = _stream_id(namespace, instance, container)
        doc, _ = self._state(stream)
        if doc is None or size == 0:
            return None
        days = doc.get("days", {})
        if day is None:
            low = doc.get("first_seq", 0) + offset
            high = min(low + size, doc["next_seq"])
            names = [d for d, span in sorted(days.items()) if span["lo"] < high and span["hi"] > low]
            field = "seq"
        else:
            span = days.get(day.isoformat())
            low, high = offset, min(offset + size, span["n"] if span else 0)
            names, field = [day.isoformat()], "day_seq"
        if low >= high or not names:
            return None
        indices = ",".join(f"{self.prefix}{dt.date.fromisoformat(d):%Y.%m.%d}" for d in names)
        return indices, stream, field, low, high, doc["next_seq"]

    @staticmethod
    def _range_body(stream: str, field: str, low: int, high: int, end: int,
                    source: tuple[str, ...] = ("text",)) -> dict[str, Any]:
        return {"size": high - low, "track_total_hits": False, "_source": list(source), "sort": [{field: "asc"}],
                "query": {"bool": {"filter": [{"term": {"stream": stream}},
                                              {"range": {field: {"gte": low, "lt": high}}},
                                              {"range": {"seq": {"lt": end}}}]}}}

    def iter_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                  offset: int = 0, size: int = 1000) -> Iterator[str]:
        page = self._page_query(namespace, instance, container, day, offset, size)
        return (text for _, text in self._walk_range(page, stamped=False))

    def iter_read_stamped(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                          offset: int = 0, size: int = 1000) -> Iterator[tuple[int, str]]:
        page = self._page_query(namespace, instance, container, day, offset, size)
        return self._walk_range(page, stamped=True)

    def _walk_range(self, page: tuple[str, str, str, int, int, int] | None,
                    stamped: bool) -> Iterator[tuple[int, str]]:
        """(ts_ns, text) of the page's lines; ts_ns is 0 unless ``stamped`` (then fetched too)."""
        if page is None:
            return
        indices, stream, field, low, high, end = page
        source = ("ts_ns", "text") if stamped else ("text",)
        for start in range(low, high, CHUNK):  # chunk by chunk: a reader that stops early stops the fetching
            found = self._search(index=indices, routing=stream, ignore_unavailable=True,
                                 body=self._range_body(stream, field, start, min(start + CHUNK, high), end, source),
                                 filter_path="hits.hits._source")
            hits = found.get("hits", {}).get("hits", [])
            for hit in hits:
                yield hit["_source"].get("ts_ns", 0), hit["_source"]["text"]

    def explain_read(self, namespace: str, instance: str, container: str, *, day: dt.date | None = None,
                     offset: int = 0, size: int = 1000) -> str:
        """The Lucene query of the page's search as OpenSearch rewrites it, with the indices and routing."""
        page = self._page_query(namespace, instance, container, day, offset, size)
        if page is None:
            return "empty page: no search"
        indices, stream, field, low, high, end = page
        body = self._range_body(stream, field, low, high, end)
        found = self._client.indices.validate_query(index=indices, body={"query": body["query"]}, explain=True,
                                                    ignore_unavailable=True)
        explained = "; ".join(e.get("explanation", "") for e in found.get("explanations", []))
        return f"indices={indices} routing={stream} sort={field} size={high - low} from=0\n{explained}"

    def explain_read_job(self, namespace: str, job: str, *, day: dt.date | None = None) -> str:
        """The Lucene query of a job page's search (a search_after walk: no ``from``, sorted by the index's
        fields)."""
        index = f"{self.prefix}{day:%Y.%m.%d}" if day else self.lines_pattern
        query = {"bool": {"filter": [{"term": {"namespace": namespace}}, {"term": {"job": job}}]}}
        found = self._client.indices.validate_query(index=index, body={"query": query}, explain=True,
                                                    ignore_unavailable=True, allow_no_indices=True)
        explained = "; ".join(e.get("explanation", "") for e in found.get("explanations", []))
        return f"indices={index} search_after sort=day,ts_ns,stream_no,stream,seq\n{explained}"

    def iter_read_job_stamped(self, namespace: str, job: str, *, day: dt.date | None = None, offset: int = 0,
                              size: int = 1000) -> Iterator[tuple[str, int, str]]:
        check_page(offset, size)
        return self._walk_job(namespace, job, day, offset, size)

    def _job_search(self, index: str, query: dict, after: list | None, size: int, source: bool,
                    start: int = 0) -> list[dict]:
        body: dict[str, Any] = {"size": size, "track_total_hits": False, "query": query,
                                "sort": [{"day": "asc"}, {"ts_ns": "asc"}, {"stream_no": "asc"}, {"stream": "asc"},
                                         {"seq": "asc"}],
                                "_source": ["instance", "ts_ns", "text"] if source else False}
        if after is not None:
            body["search_after"] = after
        elif start:
            body["from"] = start
        found = self._search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True,
                                    filter_path="hits.hits._source,hits.hits.sort")
        return found.get("hits", {}).get("hits", [])

    def _walk_job(self, namespace: str, job: str, day: dt.date | None, offset: int,
                  size: int) -> Iterator[tuple[str, int, str]]:
        index = f"{self.prefix}{day:%Y.%m.%d}" if day else self.lines_pattern
        query = {"bool": {"filter": [{"term": {"namespace": namespace}}, {"term": {"job": job}}]}}
        cursor_key = (namespace, job, day)
        position, after = self._cursors.before(cursor_key, offset)
        skip = offset - position
        if after is None and skip and skip + min(size, CHUNK) <= WINDOW:
            position, skip = offset, 0  # a shallow page from the start: `from` is cheap enough
            start = offset
        else:
            start = 0
        while skip:  # walk the sort values only, up to the page
            hits = self._job_search(index, query, after, min(skip, WINDOW), source=False)
            if not hits:
                return
            after, position, skip = hits[-1]["sort"], position + len(hits), skip - len(hits)
        left = size
        try:
            while left:
                hits = self._job_search(index, query, after, min(left, CHUNK), source=True, start=start)
                start = 0
                for hit in hits:
                    after, position, left = hit["sort"], position + 1, left - 1
                    yield hit["_source"]["instance"], hit["_source"]["ts_ns"], hit["_source"]["text"]
                if len(hits) < min(left + len(hits), CHUNK):
                    break
        finally:
            if after is not None and position > offset:
                self._cursors.remember(cursor_key, position, after)

    def containers(self, namespace: str, instance: str) -> list[str]:
        found = self._search(index=self.streams_index, body={
            "size": 1000, "_source": ["container"], "sort": [{"stream_no": "asc"}],
            "query": {"bool": {"filter": [{"term": {"namespace": namespace}}, {"term": {"instance": instance}}]}}})
        return [hit["_source"]["container"] for hit in found["hits"]["hits"]]

    def known_instance(self, namespace: str, job: str, instance: str) -> bool:
        if self._client.exists(index=self.instances_index, id=f"{namespace}/{job}/{instance}"):
            return True
        return bool(self._count(self.streams_index, [{"term": {"namespace": namespace}}, {"term": {"job": job}},
                                                     {"term": {"instance": instance}}]))

    def instances(self, namespace: str, job: str) -> list[dict[str, Any]]:
        query = {"bool": {"filter": [{"term": {"namespace": namespace}}, {"term": {"job": job}}]}}
        records = [hit["_source"]["record"] for hit in self._scan(self.instances_index, query, ["record"],
                                                                  sort=[{"created": {"order": "asc",
                                                                                     "missing": "_last"}},
                                                                        {"instance": "asc"}])]
        return records

    def _count(self, index: str, filters: list[dict]) -> int:
        return self._client.count(index=index, body={"query": {"bool": {"filter": filters}}})["count"]

    def _scan(self, index: str, query: dict, source: list[str] | bool, sort: list | None = None) -> Iterator[dict]:
        """Every hit of a query, by search_after on the given sort (the document's key last, so it is total)."""
        sort = (sort or []) + [{"stream" if index == self.streams_index else "key": "asc"}]
        after = None
        while True:
            body: dict[str, Any] = {"size": 1000, "query": query, "sort": sort, "_source": source}
            if after is not None:
                body["search_after"] = after
            hits = self._search(index=index, body=body)["hits"]["hits"]
            yield from hits
            if len(hits) < 1000:
                return
            after = hits[-1]["sort"]

    def _search(self, **kwargs: Any) -> dict[str, Any]:
        """A search, tried again while a pattern's new index has no started shard yet (503 "all shards failed":
        a writer's bulk is creating the day's index)."""
        from opensearchpy.exceptions import TransportError

        for attempt in range(6):
            try:
                return self._client.search(**kwargs)
            except TransportError as exc:
                if exc.status_code != 503 or attempt == 5:
                    raise
                time.sleep(0.05 * 2 ** attempt)
        raise AssertionError("unreachable")

    def analyze(self) -> None:
        self._client.indices.refresh(index=f"{self.prefix}*", ignore_unavailable=True, allow_no_indices=True)

    def close(self) -> None:
        self._client.close()


def _serializer() -> Any:
    """The client's JSON, answers parsed by orjson: a bulk's answer has an item per line, a page's a hit per line."""
    from opensearchpy.exceptions import SerializationError
    from opensearchpy.serializer import JSONSerializer

    class OrjsonAnswers(JSONSerializer):
        def loads(self, s: str) -> Any:
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError as exc:
                raise SerializationError(s, exc) from None

    return OrjsonAnswers()


def _stream_id(namespace: str, instance: str, container: str) -> str:
    return f"{namespace}/{instance}/{container}"


def _index_day(name: str, prefix: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(name[len(prefix):], "%Y.%m.%d").date()
    except ValueError:
        return None
