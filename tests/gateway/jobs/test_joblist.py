"""The streamed JobList -> {"jobs": [...]} rewrite gives exactly what parsing would, however the bytes are cut."""
import random

import orjson
import pytest

from gateway.jobs.joblist import Incomplete, job_list_body


def job(name, namespace="tenx-alice", **extra_metadata):
    # field order as the apiserver writes a Job inside a list (Go struct order)
    return {"metadata": {"name": name, **extra_metadata, "namespace": namespace, "uid": f"uid-{name}",
                         "resourceVersion": "1", "labels": {"name": name}},
            "spec": {"parallelism": 1, "template": {"metadata": {"name": name, "labels": {"name": name}},
                                                    "spec": {"containers": [{"name": name, "image": "x"}]}}},
            "status": {}}


def job_list(items, continue_token=""):
    metadata = {"resourceVersion": "42"}
    if continue_token:
        metadata["continue"] = continue_token
    return orjson.dumps({"kind": "JobList", "apiVersion": "batch/v1", "metadata": metadata, "items": items})


def expected(items, truncated=False):
    jobs = []
    for item in items:
        item = orjson.loads(orjson.dumps(item))
        meta = item["metadata"]
        meta["selfLink"] = f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}"
        jobs.append(item)
    return {"truncated": True, "jobs": jobs} if truncated else {"jobs": jobs}


def rewrite(raw, cuts):
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    return orjson.loads(b"".join(job_list_body(chunks)))


TRICKY = [job("a"), job("b-x", generateName="b-"),
          job("c", annotations={"note": '{"metadata":{"name":"evil","namespace":"x"}}'}),
          job("d" * 63)]


@pytest.mark.parametrize("seed", range(30))
def test_any_chunking_gives_the_parsed_answer(seed):
    rng = random.Random(seed)
    items = [rng.choice(TRICKY) for _ in range(rng.randint(0, 40))]
    raw = job_list(items)
    cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(0, 60)))) if len(raw) > 1 else []
    assert rewrite(raw, cuts) == expected(items)


def test_one_byte_chunks():
    raw = job_list(TRICKY)
    assert rewrite(raw, list(range(1, len(raw)))) == expected(TRICKY)


def test_empty_and_null_items():
    assert rewrite(job_list([]), []) == {"jobs": []}
    raw = b'{"kind":"JobList","apiVersion":"batch/v1","metadata":{"resourceVersion":"1"},"items":null}'
    assert rewrite(raw, [5, 70]) == {"jobs": []}


def test_a_continue_token_marks_the_list_truncated():
    assert rewrite(job_list(TRICKY[:2], "abc"), [10]) == expected(TRICKY[:2], truncated=True)


@pytest.mark.parametrize("cut", [10, 60, 200, -30, -2, -1])
def test_a_list_that_stops_early_raises_instead_of_ending_the_document(cut):
    raw = job_list(TRICKY)
    with pytest.raises(Incomplete):
        b"".join(job_list_body([raw[:cut]]))


def test_a_trailing_newline_is_fine():
    assert orjson.loads(b"".join(job_list_body([job_list(TRICKY[:1]) + b"\n"]))) == expected(TRICKY[:1])


def test_nothing_of_the_end_is_sent_before_the_source_ends():
    raw = job_list(TRICKY * 20)

    def breaking():
        yield raw[:len(raw) - 5]
        raise ConnectionError("cut")

    sent = b""
    with pytest.raises(ConnectionError):
        for piece in job_list_body(breaking()):
            sent += piece
    assert sent and not sent.endswith(b"]}")


class Source:
    def __init__(self, chunks):
        self.chunks, self.closed = iter(chunks), False

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.chunks)

    def close(self):
        self.closed = True


def test_close_closes_the_source_even_when_nothing_was_read():
    source = Source([job_list(TRICKY)])
    job_list_body(source).close()
    assert source.closed


def test_prime_reads_the_head_once():
    source = Source([job_list(TRICKY)])
    body = job_list_body(source)
    body.prime()
    body.prime()
    assert orjson.loads(b"".join(body)) == expected(TRICKY)
