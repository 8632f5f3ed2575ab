"""Every distinct failure of the unit-level fuzzer, not just the first: ``python -m tests.support.survey``.

Runs the strategies of tests/gateway/api/test_fuzz_api.py (generated examples only: no explicit ones, no shrinking)
against the app with the fake apiserver, and prints each distinct failure once (the property broken, the status, and for
a 500 the exception and where it was raised) with the shortest request that showed it. The figures in RELIABILITY.md
come from here and from the tests. ``--scale`` multiplies the example counts; ``--seed`` picks other examples.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import traceback
from collections import Counter

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from .seed import SEED_JOB
from . import strategies as fuzz
from .fuzz_app import NAMESPACE, FuzzedApp

RUNS = {  # name: (examples, strategy of (method, path, request kwargs))
    "job.json": (500, fuzz.broken_jobs().map(lambda j: ("POST", "/jobs/{name}", {"json": j}))),
    "valid job.json": (200, st.tuples(fuzz.job_names, fuzz.valid_jobs()).map(
        lambda nj: ("POST", f"/jobs/{nj[0]}", {"json": nj[1], "must": 200}))),
    "raw job.json": (400, fuzz.raw_bodies().map(lambda b: ("POST", "/jobs/{name}", {"data": b}))),
    "paths": (500, fuzz.paths().map(
        lambda mp: (mp[0], mp[1], {"json": SEED_JOB} if mp[0] in ("POST", "PUT") else {}))),
    "logs query": (500, st.tuples(fuzz.log_targets(), fuzz.log_queries()).map(
        lambda tq: ("GET", tq[0], {"query_string": tq[1]}))),
}


class LastError(logging.Handler):
    """The last exception the gateway logged as unhandled: its type and the frame that raised it."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            frame = traceback.extract_tb(record.exc_info[2])[-1]
            self.last = f"{type(record.exc_info[1]).__name__} at {frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}"


def survey(scale: float, run_seed: int) -> dict:
    app = FuzzedApp(tempfile.mkdtemp(prefix="tenx-fuzz-survey-"))
    errors = LastError()
    logging.getLogger("gateway").addHandler(errors)
    found: dict[tuple, str] = {}
    counts: Counter = Counter()
    names = iter(range(10**9))
    for run, (examples, strategy) in RUNS.items():
        @seed(run_seed)
        @settings(max_examples=int(examples * scale), deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(request=strategy)
        def one(request):
            method, path, kwargs = request
            kwargs = dict(kwargs)
            must = kwargs.pop("must", None)
            path = path.replace("{name}", f"fz-{next(names)}")
            if must:
                app.apiserver.jobs.pop((NAMESPACE, path.rsplit("/", 1)[-1]), None)
            errors.last = ""
            counts[run] += 1
            response, problems, exchange = app.call(method, path, **kwargs)
            if must and response.status_code != must:
                problems.append(f"a valid request answered {response.status_code}")
            for problem in problems:
                kind = re.sub(r"\d+", "N", re.sub(r"\[.*", "", problem))[:60]
                key = (run, response.status_code, kind, errors.last if response.status_code == 500 else "")
                if key not in found or len(exchange) < len(found[key]):
                    found[key] = exchange
        one()
    return {"examples": dict(counts), "failures": [
        {"run": run, "status": status, "problem": kind, "raised": raised, "shortest": exchange}
        for (run, status, kind, raised), exchange in sorted(found.items(), key=str)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = survey(args.scale, args.seed)
    print(json.dumps(result, indent=1, ensure_ascii=True))


if __name__ == "__main__":
    main()
