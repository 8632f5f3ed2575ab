"""The apiserver's JobList -> the API's ``{"jobs": [...]}``, as a stream of bytes, without parsing it.

Each Job gets ``metadata.selfLink``. The list is never decoded: in the apiserver's JSON a Job inside ``items``
starts with ``{"metadata":{"name":"`` right after ``[`` or ``,`` (Go writes struct fields in declaration order
and escapes every quote inside a string, so those bytes can only be an item's start), and selfLink goes right
after its ``"namespace":"..."``, where Go itself would write it. Memory stays at about one chunk.

A list is complete only when the source ends with the document's end: the last 2 KiB are held back until then,
so a stream that breaks off (the source raises) never yields a JSON document that parses, and one that simply
stops early, without its closing ``]}``, raises ``Incomplete``."""
from __future__ import annotations

from typing import Iterable, Iterator

_ITEM = b'{"metadata":{"name":"'
_NAMESPACE = b'"namespace":"'
_ITEMS = b'"items":'
_CONTINUE = b'"continue":"'
_LOOKAHEAD = 2048  # an item's name, generateName and namespace fit in this many bytes


class Incomplete(ValueError):
    """The apiserver's list ended before the document did."""


class JobListBody:
    """The rewritten list as an iterator of bytes whose ``close`` also closes the source (a generator's close
    does nothing before it has started, so an unread body would keep the apiserver's connection)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._source = chunks
        self._rewrite = _rewrite(iter(chunks))
        self._primed: list[bytes] = []

    def prime(self) -> None:
        """Read up to the first bytes of the answer now, so a list that fails before it starts fails here (as an
        error response) rather than after a 200 has been sent."""
        if not self._primed:
            self._primed.append(next(self._rewrite))

    def __iter__(self) -> JobListBody:
        return self

    def __next__(self) -> bytes:
        return self._primed.pop() if self._primed else next(self._rewrite)

    def close(self) -> None:
        self._rewrite.close()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class SplicedBody:
    """A list already whole in memory (the watch cache's, see gateway/kube/cache/entries.list_chunks), with the same
    ``prime``/``close`` as ``JobListBody``: nothing can break off, so there is nothing to hold back."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)

    def prime(self) -> None:
        pass

    def __iter__(self) -> SplicedBody:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def job_list_body(chunks: Iterable[bytes]) -> JobListBody:
    return JobListBody(chunks)


def _rewrite(iterator: Iterator[bytes]) -> Iterator[bytes]:
    buf, head = b"", True
    done = False
    while not done:
        chunk = next(iterator, None)
        done = chunk is None
        buf += chunk or b""
        if head:
            at = buf.find(_ITEMS)
            if at < 0:
                if done:
                    raise Incomplete("the answer holds no list")
                continue
            head = False
            truncated = _CONTINUE in buf[:at] and not buf.startswith(_CONTINUE + b'"', buf.find(_CONTINUE))
            buf = buf[at + len(_ITEMS):]
            if buf.startswith(b"null"):
                buf = b"[]" + buf[4:]
            yield b'{"truncated":true,"jobs":' if truncated else b'{"jobs":'
            buf = b" " + buf  # one byte of context before the first unprocessed byte (never emitted)
        if done and not buf.rstrip().endswith(b"]}"):
            raise Incomplete("the list ended before its end")
        limit = len(buf) if done else len(buf) - _LOOKAHEAD
        if limit <= 1:
            continue
        out, pos = [], 1
        while True:
            i = buf.find(_ITEM, pos)
            if i < 0 or i >= limit:
                break
            after = _inject_at(buf, i) if buf[i - 1] in b"[," else None
            if after is None:
                out.append(buf[pos:i + 1])
                pos = i + 1
                continue
            end, link = after
            out.append(buf[pos:end])
            out.append(link)
            pos = end
        cut = max(pos, limit)
        out.append(buf[pos:cut])
        yield b"".join(out)
        buf = buf[cut - 1:]  # keep the last emitted byte as context


def _inject_at(buf: bytes, i: int) -> tuple[int, bytes] | None:
    """(where to insert, the selfLink member) for the item starting at ``i``; None if it does not look as
    expected (then the item passes through unchanged)."""
    name_start = i + len(_ITEM)
    name_end = buf.find(b'"', name_start)
    ns_key = buf.find(_NAMESPACE, name_end, name_end + 600)  # past an optional generateName
    if name_end < 0 or ns_key < 0:
        return None
    ns_start = ns_key + len(_NAMESPACE)
    ns_end = buf.find(b'"', ns_start)
    if ns_end < 0 or buf.startswith(b',"selfLink":', ns_end + 1):
        return None
    name, namespace = buf[name_start:name_end], buf[ns_start:ns_end]
    return ns_end + 1, b',"selfLink":"/apis/batch/v1/namespaces/' + namespace + b"/jobs/" + name + b'"'
