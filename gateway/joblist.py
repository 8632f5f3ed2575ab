"""The apiserver's JobList -> the API's ``{"jobs": [...]}``, as a stream of bytes, without parsing it.

Each Job gets ``metadata.selfLink``. The list is never decoded: in the apiserver's JSON a Job inside ``items``
starts with ``{"metadata":{"name":"`` right after ``[`` or ``,`` (Go writes struct fields in declaration order
and escapes every quote inside a string, so those bytes can only be an item's start), and selfLink goes right
after its ``"namespace":"..."``, where Go itself would write it. Memory stays at about one chunk."""
from __future__ import annotations

from typing import Iterable, Iterator

_ITEM = b'{"metadata":{"name":"'
_NAMESPACE = b'"namespace":"'
_ITEMS = b'"items":'
_CONTINUE = b'"continue":"'
_LOOKAHEAD = 2048  # an item's name, generateName and namespace fit in this many bytes


def job_list_body(chunks: Iterable[bytes]) -> Iterator[bytes]:
    buf, head = b"", True
    iterator = iter(chunks)
    done = False
    while not done:
        chunk = next(iterator, None)
        done = chunk is None
        buf += chunk or b""
        if head:
            at = buf.find(_ITEMS)
            if at < 0:
                if done:
                    raise ValueError("not a list")
                continue
            head = False
            truncated = _CONTINUE in buf[:at] and not buf.startswith(_CONTINUE + b'"', buf.find(_CONTINUE))
            buf = buf[at + len(_ITEMS):]
            if buf.startswith(b"null"):
                buf = b"[]" + buf[4:]
            yield b'{"truncated":true,"jobs":' if truncated else b'{"jobs":'
            buf = b" " + buf  # one byte of context before the first unprocessed byte (never emitted)
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
