"""The streamed JobList -> {"jobs": [...]} rewrite gives exactly what parsing would, however the bytes are cut."""
import random

import orjson
import pytest

from gateway.joblist import job_list_body


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
