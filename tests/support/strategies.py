"""Hypothesis strategies for what a careless or hostile client sends: job.json (as data and as raw JSON text), path
segments and the logs query. Shared by the unit-level fuzzer (tests/gateway/api/test_fuzz_api.py, fake apiserver) and
the live one (tests/integration/test_fuzz_live.py, the local cluster)."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from .seed import SEED_JOB

# -- values --------------------------------------------------------------------------------------------------------

NASTY_TEXT = [
    "", " ", "\t", "\n", "a\n", "A\n", "v\n", "1Mi\n", "\r\n", "\x00", "a\x00b", "\x1b[31m", "\u2028", "\u202e",
    "\ufeff", "é", "名前", "😀", "I\u0307", ".", "..", "/", "a/b", "-", "-a", "a-", "A", "a_b", "a.b", "$(id)",
    "%00", "%2e%2e", "null", "true", "0", "-1", "1e999", "NaN", "Infinity", "a" * 63, "a" * 64, "a" * 254,
    "x" * 5000, "TCP", "host", "512Mi", "0.5", "125m", "1e3", "-1Mi", "+1", "1.5.5", "Mi", "/data", "/etc/localtime",
]
BIG_AND_SMALL = [0, 1, -1, 2**31 - 1, 2**31, -2**31, 2**53, 2**63, 2**64, -2**63 - 1, 10**30, 0.0, -0.0, 0.5, 1.0,
                 5e-324, 1e308, -1e308, 65535, 65536]

texts = st.text(max_size=12) | st.sampled_from(NASTY_TEXT)
numbers = st.sampled_from(BIG_AND_SMALL) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6)

# -- job.json, valid -----------------------------------------------------------------------------------------------

labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?\Z")
env_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,10}\Z")
quantities = st.sampled_from(["125m", "0.5", "1", "2", "512Mi", "1Gi", "1e3", "100k", ".5", "1.5Gi"])
images = st.sampled_from(["busybox", "index.tenxcloud.com/tenxcloud/perl_job:latest",
                          "registry:5000/a/b@sha256:" + "0" * 64])


OPTIONAL_JOB_KEYS = ["volumes", "sync_timezone", "parallelism", "completions", "backoff_limit",
                     "active_deadline_seconds", "ttl_seconds_after_finished"]
OPTIONAL_CONTAINER_KEYS = ["pull_always", "command", "args", "env", "ports", "resources", "volumeMounts"]

# Job names: short and long labels, and 61-character names ending in "-1" (a second container's name is cut from
# the job's: it must not repeat a name already taken).
job_names = (labels | st.from_regex(r"\A[a-z][-a-z0-9]{57,59}[a-z0-9]-1\Z")
             | st.sampled_from(["a" * 63, "a" * 61 + "-1", "a" * 59 + "-1-1", "x", "0", "job-api"]))


@st.composite
def valid_jobs(draw, nulls: bool = True) -> dict[str, Any]:
    """job.json the gateway must accept. With ``nulls``, some absent optional fields are sent as ``null``, as the
    original's Go and JavaScript clients do for empty lists."""
    volumes = draw(st.lists(labels.filter(lambda n: n != "tenxcloud-time-zone"), max_size=3, unique=True))
    sync_timezone = draw(st.booleans())

    def container() -> dict[str, Any]:
        c: dict[str, Any] = {"image": draw(images)}
        optional = {
            "pull_always": st.booleans(),
            "command": st.lists(st.text(max_size=16), max_size=3),
            "args": st.lists(st.text(max_size=16), max_size=3),
            "env": st.lists(st.fixed_dictionaries({"name": env_names}, optional={"value": st.text(max_size=16)}),
                            max_size=3),
            "ports": st.lists(st.fixed_dictionaries({"port": st.integers(1, 65535)},
                                                    optional={"protocol": st.sampled_from(["TCP", "UDP", "SCTP"])}),
                              max_size=2),
            "resources": st.fixed_dictionaries({}, optional={"limits": st.fixed_dictionaries(
                {}, optional={"cpu": quantities, "memory": quantities})}),
        }
        for key, strategy in optional.items():
            if draw(st.booleans()):
                c[key] = draw(strategy)
        if volumes and draw(st.booleans()):
            mounted = draw(st.lists(st.sampled_from(volumes), min_size=1, unique=True))
            c["volumeMounts"] = [{"name": v, "mountPath": f"/mnt/{i}/{v}", **({"readOnly": True} if i % 2 else {})}
                                 for i, v in enumerate(mounted)]
        for key in OPTIONAL_CONTAINER_KEYS:
            if nulls and key not in c and draw(st.integers(0, 3)) == 0:
                c[key] = None
        return c

    job: dict[str, Any] = {"containers": [container() for _ in range(draw(st.integers(1, 3)))]}
    if volumes or draw(st.booleans()):
        job["volumes"] = [{"name": v, "type": "host"} for v in volumes]
    if sync_timezone or draw(st.booleans()):
        job["sync_timezone"] = sync_timezone
    for key, low, high in (("parallelism", 0, 10), ("completions", 1, 100), ("backoff_limit", 0, 10),
                           ("active_deadline_seconds", 1, 10**6), ("ttl_seconds_after_finished", 0, 10**6)):
        if draw(st.booleans()):
            job[key] = draw(st.integers(low, high))
    for key in OPTIONAL_JOB_KEYS:
        if nulls and key not in job and draw(st.integers(0, 3)) == 0:
            job[key] = None
    return job


# -- job.json, broken at one place --------------------------------------------------------------------------------

def _places(value: Any, at: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) into a JSON value, the root included."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*at, index))
    return found


def _parent(doc: Any, at: tuple) -> Any:
    for step in at[:-1]:
        doc = doc[step]
    return doc


ODD_VALUES = [*NASTY_TEXT, *BIG_AND_SMALL, None, True, False, [], {}, [None], {"": None}]


@st.composite
def broken_jobs(draw) -> Any:
    """A valid job.json (or the seed) changed at one or two places: an odd value (mostly at a leaf: where the
    gateway's own checks are), any JSON value, null, removed, an unknown key beside it, or wrapped in a list."""
    job = draw(valid_jobs(nulls=False) | st.just(json.loads(json.dumps(SEED_JOB))))
    for _ in range(draw(st.integers(1, 2))):
        places = _places(job)
        leaves = [at for at in places if at and not isinstance(_parent(job, at)[at[-1]], (dict, list))]
        at = draw(st.sampled_from(leaves) if leaves and draw(st.booleans()) else st.sampled_from(places))
        action = draw(st.sampled_from(["odd", "odd", "odd", "replace", "null", "remove", "unknown", "wrap"]))
        if not at:
            return draw(json_values) if action != "wrap" else [job]
        parent, key = _parent(job, at), at[-1]
        if action == "odd":
            parent[key] = draw(st.sampled_from(ODD_VALUES))
        elif action == "replace":
            parent[key] = draw(json_values)
        elif action == "null":
            parent[key] = None
        elif action == "remove":
            del parent[key]
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif isinstance(parent, dict):
            parent[draw(texts)] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return job


# -- job.json as raw text: what json.dumps never writes ---------------------------------------------------------------

SURROGATES = ["\\ud800", "\\udfff", "\\ud83d", "a\\udc00b", "\\ud800\\ud800"]
MARK = "@@FUZZ@@"


def _string_places(job: Any) -> list[tuple]:
    return [at for at in _places(job) if at and isinstance(_parent(job, at)[at[-1]], str)]


@st.composite
def raw_bodies(draw) -> bytes:
    """Request bodies as bytes: lone surrogates (valid JSON escapes), duplicate keys, deep nesting, numbers past
    every range, invalid UTF-8, and text that is not a JSON object at all."""
    job = draw(valid_jobs(nulls=False) | st.just(json.loads(json.dumps(SEED_JOB))))
    kind = draw(st.sampled_from(["surrogate", "duplicate", "nesting", "number", "bytes", "other"]))
    if kind == "surrogate":
        places = _string_places(job) or [("containers", 0, "image")]
        at = draw(st.sampled_from(places))
        _parent(job, at)[at[-1]] = MARK
        return json.dumps(job).replace(f'"{MARK}"', f'"{draw(st.sampled_from(SURROGATES))}"').encode()
    if kind == "duplicate":
        text = json.dumps(job)
        key = draw(st.sampled_from(["containers", "volumes", "sync_timezone", "parallelism", "image", "command",
                                    "name"]))
        value = json.dumps(draw(json_values))
        if key in ("image", "command") and '"image":' in text:  # inside the first container
            return text.replace('"image":', f'"{key}": {value}, "image":', 1).encode()
        return ("{" + f'"{key}": {value}, ' + text[1:]).encode() if draw(st.booleans()) else \
            (text[:-1] + f', "{key}": {value}' + "}").encode()
    if kind == "nesting":
        depth = draw(st.sampled_from([64, 500, 1000, 5000, 60000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + "1" + closer * depth
        where = draw(st.sampled_from(["whole", "command", "unclosed"]))
        if where == "whole":
            return inner.encode()
        if where == "unclosed":
            return (opener * depth).encode()
        job["containers"][0]["command"] = MARK
        return json.dumps(job).replace(f'"{MARK}"', inner).encode()
    if kind == "number":
        number = draw(st.sampled_from(["1" + "0" * 400, "-" + "9" * 5000, "1e999999", "-1e-999999", "1E400",
                                       "5e-324", "-0", "0.0", "1.0", "2147483648", "9223372036854775808",
                                       "1" * 4301, "0e0"]))
        key = draw(st.sampled_from(["parallelism", "completions", "backoff_limit", "active_deadline_seconds",
                                    "ttl_seconds_after_finished", "port"]))
        if key == "port":
            job["containers"][0]["ports"] = [{"port": MARK}]
        else:
            job[key] = MARK
        return json.dumps(job).replace(f'"{MARK}"', number).encode()
    if kind == "bytes":
        text = json.dumps(job).encode()
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"]))
        if junk == b"\xef\xbb\xbf":
            return junk + text
        at = draw(st.integers(0, len(text)))
        return text[:at] + junk + text[at:]
    return draw(st.sampled_from([b"", b" ", b"null", b"[]", b"{}", b'"job"', b"1", b"true", b"{", b"}", b"[",
                                 b'{"containers": [}', b"{'containers': []}", b'{"containers": NaN}',
                                 b'{"containers": [{"image": "busybox"}]} trailing', b"\n" * 10]))


# -- path segments --------------------------------------------------------------------------------------------------

NASTY_SEGMENTS = [".", "..", "...", "%2e", "%2E%2E", ".%2e", "%2e.", "a%2Fb", "a%2fb", "%00", "a%00", "%0A",
                  "abc%0A", "abc%0D%0A", "%20", "a%20b", "%25", "%252e", "%ZZ", "%", "~", "a;b", "a:b", "@",
                  "a.b", "A", "job-API", "-a", "a-", "a" * 63, "a" * 64, "a" * 253, "a" * 254, "a" * 300,
                  "%E5%90%8D", "%F0%9F%98%80", "%C3%A9", "%ED%A0%80", "%FF", "fuzz-job", "fuzz-job-x7k2p"]


@st.composite
def segments(draw) -> str:
    """One path segment as it goes on the wire (already percent-encoded where it needs to be)."""
    choice = draw(st.sampled_from(["nasty", "nasty", "nasty", "suffixed", "suffixed", "text", "label", "long"]))
    if choice == "nasty":
        return draw(st.sampled_from(NASTY_SEGMENTS))
    if choice == "suffixed":  # a good name with an odd end: "$" in a pattern matches before a final newline
        return draw(labels) + draw(st.sampled_from(["%0A", "%0D", "%0D%0A", "%00", "%20", "%09", ".", "-", "%2F",
                                                    "%2E", "%C2%A0", "%E2%80%A8"]))
    if choice == "text":
        safe = draw(st.sampled_from(["", ".-_~", ".-_~!$&'()*+,;=:@"]))
        return quote(draw(st.text(min_size=1, max_size=12)), safe=safe)
    if choice == "label":
        return draw(labels)
    return draw(st.sampled_from(["a", "-", "1", "ab-"])) * draw(st.integers(60, 320))


@st.composite
def paths(draw, job: str = "fuzz-job", instance: str = "fuzz-job-x7k2p") -> tuple[str, str]:
    """(method, path under /v1/regions/us) on every route, with fuzzed segments, and sometimes a trailing slash."""
    first = draw(segments() | st.just(job))
    second = draw(segments() | st.just(instance))
    template, methods = draw(st.sampled_from([
        ("/jobs/{a}", ["GET", "POST", "DELETE", "PUT", "HEAD"]), ("/jobs/{a}/logs", ["GET", "HEAD", "POST"]),
        ("/jobs/{a}/instances", ["GET", "DELETE"]), ("/jobs/{a}/instances/{b}/logs", ["GET", "GET", "HEAD"]),
        ("/jobs/{a}/instances/{b}", ["GET", "DELETE"]), ("/jobs", ["GET", "POST", "HEAD"]),
        ("/jobs/{a}/{b}", ["GET", "POST"])]))
    path = template.format(a=first, b=second) + draw(st.sampled_from(["", "", "", "/", "//"]))
    method = draw(st.sampled_from(methods))
    return method, path


# -- the logs query -------------------------------------------------------------------------------------------------

QUERY_VALUES = ["", " ", "0", "1", "-1", "-0", "+5", "5 ", " 5", "5.0", "1e3", "0x10", "1_000", "NaN", "inf",
                "9" * 19, "9" * 40, "-" + "9" * 40, str(2**53 - 1), str(2**53), str(2**63), "１２", "٣", "²",
                "9999.12.31", "0001.01.01", "0000.01.01", "2026.11.27", "2026.11.28", "2026.02.30", "2026.13.01",
                "2026.1.1", "2026-11-28", "99999.01.01", "2026.11.28\n", "2026.11.28 ", "今天", "%00", "\x00"]


VALID_QUERY_VALUES = {
    "date": ["2026.11.27", "2026.11.28", "9999.12.31", "0001.01.01", "2000.02.29", "1970.01.01"],
    "from": ["0", "1", "6", "7", "15", str(2**53 - 1), "1000000"],
    "size": ["0", "1", "3", "100", "10000"],
}


@st.composite
def log_queries(draw) -> list[tuple[str, str]]:
    """Query parameters as a list of pairs: each of date, from, size absent, valid (extremes included), odd
    (empty, huge, negative, non-ASCII) or repeated; now and then an unknown parameter. Most parameters are absent
    or valid, so that one odd value is not always hidden behind another's 400."""
    pairs: list[tuple[str, str]] = []
    for key in ("date", "from", "size"):
        mode = draw(st.sampled_from(["absent", "absent", "valid", "valid", "valid", "odd", "repeated"]))
        if mode == "valid":
            pairs.append((key, draw(st.sampled_from(VALID_QUERY_VALUES[key]))))
        elif mode in ("odd", "repeated"):
            odd = st.sampled_from(QUERY_VALUES) if draw(st.integers(0, 3)) else st.text(max_size=8)
            values = [draw(odd)] + ([draw(odd | st.sampled_from(VALID_QUERY_VALUES[key]))] if mode == "repeated"
                                    else [])
            pairs += [(key, value) for value in values]
    if draw(st.integers(0, 4)) == 0:
        pairs.append((draw(st.sampled_from(["offset", "limit", "DATE", "from[]", ""])), draw(st.text(max_size=4))))
    return draw(st.permutations(pairs))


@st.composite
def log_targets(draw, job: str = "fuzz-job", instance: str = "fuzz-job-x7k2p") -> str:
    """The logs routes: an instance that exists (its live log), one that does not, and the job's logs."""
    return draw(st.sampled_from([f"/jobs/{job}/instances/{instance}/logs", f"/jobs/{job}/instances/{job}-nope/logs",
                                 f"/jobs/{job}/logs", "/jobs/no-such-job/logs"]))
