"""The log archive: the three stores (SQLite, PostgreSQL, OpenSearch) pass the same tests, including that a page of a day is an indexed range read."""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store import ContainerKey, LogLine, ResumePoint, open_store
from gateway.store.base import NS, StreamState, number_lines
from gateway.timefmt import DayClock

pytest_plugins = ["tests.support.archive_pg", "tests.support.archive_opensearch"]

D = dt.date(2026, 11, 25)
KEY = ContainerKey("tenx-alice", "job-a", "job-a-x7k2p", "job-a")


def ts(stamp: str) -> int:
    """Nanoseconds of an RFC 3339 UTC stamp with up to 9 fractional digits."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp()
    return int(seconds) * NS + int((fraction or "0").ljust(9, "0"))


def lines(start: str, texts: list[str], step_ns: int = NS) -> list[LogLine]:
    return [LogLine(ts(start) + i * step_ns, text) for i, text in enumerate(texts)]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York", "America/Santiago"])
def test_day_clock_agrees_with_zoneinfo_across_dst_changes(zone):
    """The clock caches a day's bounds; walking through 2026's DST changes, it must agree with a fresh lookup."""
    clock, tz = DayClock(zone), ZoneInfo(zone)
    for start, end in (("2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z"),
                       ("2026-04-03T00:00:00Z", "2026-04-07T00:00:00Z"),
                       ("2026-09-04T00:00:00Z", "2026-09-08T00:00:00Z"),
                       ("2026-10-30T00:00:00Z", "2026-11-03T00:00:00Z")):
        for t in range(ts(start), ts(end), 599 * NS + 123):
            assert clock.day(t) == dt.datetime.fromtimestamp(t // NS, tz).date(), (zone, t)
    assert clock.stamp_day("2026-11-25T16:00:00.123456789Z") == dt.datetime(2026, 11, 25, 16, tzinfo=dt.timezone.utc
                                                                            ).astimezone(tz).date()
    assert clock.stamp_day("not a time") is None and clock.stamp_day(None) is None


def _number_line_by_line(lines, state, clock, next_day_seq):
    """What ``number_lines`` must give, one line at a time: a day already had in this batch resumes where it was."""
    rows, resume = [], {}
    seq, day, day_seq = state.next_seq, state.day, state.next_day_seq
    last_ts, at_last = state.last_ts_ns, state.lines_at_last_ts
    for line in lines:
        line_day = clock.day(line.ts_ns)
        if line_day != day:
            resume[day] = day_seq
            day = line_day
            day_seq = resume[day] if day in resume else next_day_seq(day)
        rows.append((seq, day, day_seq, line.ts_ns, line.text.replace("\x00", "\ufffd")))
        seq, day_seq = seq + 1, day_seq + 1
        last_ts, at_last = (last_ts, at_last + 1) if line.ts_ns == last_ts else (line.ts_ns, 1)
    return rows, StreamState(seq, day, day_seq, last_ts, at_last)


MIDNIGHT_SP = ts("2026-11-26T03:00:00Z")  # midnight in Sao Paulo


@settings(max_examples=300, deadline=None)
@given(offsets=st.lists(st.integers(-3 * NS, 3 * NS), min_size=1, max_size=40),
       in_order=st.booleans(), repeats=st.integers(0, 3), nul=st.booleans(), next_seq=st.integers(0, 10**6),
       state_day=st.sampled_from([None, dt.date(2026, 11, 25), dt.date(2026, 11, 26)]),
       next_day_seq=st.integers(0, 1000), at_last=st.integers(0, 5), same_last=st.booleans())
def test_number_lines_numbers_as_line_by_line(offsets, in_order, repeats, nul, next_seq, state_day, next_day_seq,
                                              at_last, same_last):
    """The numbering made by column (one day without a step per line) is the one a line at a time gives: across
    midnight, with stamps repeated, out of order (a day left and come back to), NULs, and any state before."""
    stamps = sorted(offsets) if in_order else offsets
    stamps = [MIDNIGHT_SP + o for o in stamps for _ in range(1 + repeats * (o % 2))]
    batch = [LogLine(t, f"line {i}" + ("\x00" if nul and i % 3 == 0 else "")) for i, t in enumerate(stamps)]
    state = StreamState(next_seq, state_day, next_day_seq, stamps[0] if same_last else None,
                        at_last if same_last else 0)
    asked = []

    def stored(day):
        asked.append(day)
        return {dt.date(2026, 11, 25): 7, dt.date(2026, 11, 26): 70}.get(day, 0)

    expected, expected_state = _number_line_by_line(batch, state, DayClock("America/Sao_Paulo"), stored)
    asked_line_by_line, asked[:] = list(asked), []
    numbered, after = number_lines(batch, state, DayClock("America/Sao_Paulo"), stored)
    assert list(numbered.rows()) == expected
    assert after == expected_state
    assert asked == asked_line_by_line
    assert list(numbered.rows()) == [r for run in numbered.runs() for r in zip(run[1], [run[0]] * len(run[1]),
                                                                              *run[2:])]


@pytest.fixture(params=["sqlite", "postgres", "opensearch"])
def archive(request, tmp_path):
    """``archive(timezone="UTC")`` opens a store of the parametrized kind; every store opened is closed after."""
    url = (f"sqlite:///{tmp_path}/archive.db" if request.param == "sqlite"
           else request.getfixturevalue(f"{request.param}_dsn"))
    opened = []

    def make(timezone: str = "UTC"):
        opened.append(open_store(url, timezone))
        return opened[-1]

    make.kind = request.param
    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(archive):
    return archive()


def test_append_and_read_a_page(store):
    store.append(KEY, lines("2026-11-25T10:00:00Z", [f"line {i}" for i in range(10)]))
    expected = [f"line {i}" for i in range(3, 7)]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=3, size=4) == expected
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D, offset=3, size=4) == expected
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D + dt.timedelta(days=1)) == []


def test_seq_and_day_seq_continue_across_appends(store):
    store.append(KEY, lines("2026-11-25T10:00:00Z", ["a", "b", "c"]))
    store.append(KEY, lines("2026-11-25T11:00:00Z", ["d", "e"]))
    store.append(KEY, [])
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a") == ["a", "b", "c", "d", "e"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D, offset=2, size=2) == ["c", "d"]


def test_read_past_the_end_or_of_nothing(store):
    store.append(KEY, lines("2026-11-25T10:00:00Z", ["a", "b"]))
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=1, size=5) == ["b"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=2, size=5) == []
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", size=0) == []
    assert store.read("tenx-alice", "no-such-pod", "job-a") == []
    assert store.read("tenx-bob", "job-a-x7k2p", "job-a") == []
    with pytest.raises(ValueError):
        store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=-1)


def test_resume_point_counts_lines_at_the_last_stamp(store):
    assert store.resume_point(KEY) == ResumePoint(None, 0)
    t1, t2 = ts("2026-11-25T10:00:00.000000001Z"), ts("2026-11-25T10:00:00.5Z")
    store.append(KEY, [LogLine(t1, "a"), LogLine(t2, "b"), LogLine(t2, "c"), LogLine(t2, "d")])
    assert store.resume_point(KEY) == ResumePoint(t2, 3, attempt=0, next_seq=4)
    store.append(KEY, [LogLine(t2, "e")])
    assert store.resume_point(KEY) == ResumePoint(t2, 4, attempt=0, next_seq=5)
    store.append(KEY, [LogLine(t2 + 1, "f")])
    assert store.resume_point(KEY) == ResumePoint(t2 + 1, 1, attempt=0, next_seq=6)
    other = ContainerKey("tenx-alice", "job-a", "job-a-x7k2p", "sidecar")
    assert store.resume_point(other) == ResumePoint(None, 0)


def test_days_in_utc_restart_day_seq(store):
    store.append(KEY, [LogLine(ts("2026-11-25T23:59:59.999999999Z"), "last of 25th"),
                       LogLine(ts("2026-11-26T00:00:00Z"), "first of 26th"),
                       LogLine(ts("2026-11-26T00:00:01Z"), "second of 26th")])
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D) == ["last of 25th"]
    nov26 = D + dt.timedelta(days=1)
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=nov26, size=1) == ["first of 26th"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=nov26, offset=1) == ["second of 26th"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=1, size=1) == ["first of 26th"]


def test_an_append_that_goes_back_to_a_day_it_left_numbers_that_day_on(store):
    """Stamps a little out of order across midnight, in one append: the 25th's second line follows its first."""
    store.append(KEY, [LogLine(ts("2026-11-25T23:59:59Z"), "25th, first"),
                       LogLine(ts("2026-11-26T00:00:00.5Z"), "26th"),
                       LogLine(ts("2026-11-25T23:59:59.9Z"), "25th, second")])
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D) == ["25th, first", "25th, second"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D + dt.timedelta(days=1)) == ["26th"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a") == ["25th, first", "26th", "25th, second"]


def test_days_in_another_timezone(archive):
    store = archive("Asia/Shanghai")  # UTC+8: 16:00Z is midnight
    store.append(KEY, [LogLine(ts("2026-11-25T15:59:59Z"), "25th, 23:59:59 local"),
                       LogLine(ts("2026-11-25T16:00:00Z"), "26th, midnight local"),
                       LogLine(ts("2026-11-25T17:00:00Z"), "26th, 01:00 local")])
    nov26 = D + dt.timedelta(days=1)
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D) == ["25th, 23:59:59 local"]
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", day=nov26) == ["26th, midnight local",
                                                                           "26th, 01:00 local"]


def test_text_survives_as_written(store):
    # and what PostgreSQL's COPY text format reserves: its delimiter, escapes, NULL and end-of-data markers
    copy_reserved = ["back\\slash", "\\N", "\\.", "ends with \\", "cr\rhere", "new\nline", "\\t is no tab"]
    texts = ["日志 ✓ 🚀 naïve", "", "  spaces  ", "tab\there", "nul\x00byte", "x" * 20000, *copy_reserved]
    store.append(KEY, lines("2026-11-25T10:00:00Z", texts))
    got = store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D)
    assert got == texts[:4] + ["nul\ufffdbyte", texts[5], *copy_reserved]


def test_read_job_interleaves_instances_in_time_order(store):
    a = ContainerKey("tenx-alice", "job-a", "job-a-aaaaa", "job-a")
    a2 = ContainerKey("tenx-alice", "job-a", "job-a-aaaaa", "job-a-1")
    b = ContainerKey("tenx-alice", "job-a", "job-a-bbbbb", "job-a")
    other = ContainerKey("tenx-alice", "job-b", "job-b-ccccc", "job-b")
    t = ts("2026-11-25T23:59:58Z")
    store.append(b, [LogLine(t, "b0"), LogLine(t + 2 * NS, "b2"), LogLine(t + 2 * NS, "b2'")])
    store.append(a, [LogLine(t, "a0"), LogLine(t + NS, "a1"), LogLine(t + 2 * NS, "a2")])
    store.append(a2, [LogLine(t + 2 * NS, "a2 side")])
    store.append(other, [LogLine(t, "other job")])
    # lines stamped alike keep the order their containers were first archived in (b, then a, then a's side)
    everything = [("job-a-bbbbb", "b0"), ("job-a-aaaaa", "a0"), ("job-a-aaaaa", "a1"),
                  ("job-a-bbbbb", "b2"), ("job-a-bbbbb", "b2'"), ("job-a-aaaaa", "a2"),
                  ("job-a-aaaaa", "a2 side")]
    assert store.read_job("tenx-alice", "job-a") == everything
    assert store.read_job("tenx-alice", "job-a", offset=2, size=3) == everything[2:5]
    assert store.read_job("tenx-alice", "job-a", day=D) == everything[:3]
    assert store.read_job("tenx-alice", "job-a", day=D + dt.timedelta(days=1), offset=1, size=2) == everything[4:6]
    assert store.read_job("tenx-bob", "job-a") == []
    assert store.containers("tenx-alice", "job-a-aaaaa") == ["job-a", "job-a-1"]


def test_stamped_reads_carry_each_lines_timestamp(store):
    """What timestamps=true and since read: the same lines as the plain reads, each with its own stamp."""
    t = ts("2026-11-25T23:59:59.123456789Z")
    a, b = KEY, ContainerKey("tenx-alice", "job-a", "job-a-bbbbb", "job-a")
    store.append(a, [LogLine(t, "a0"), LogLine(t + 1, "a1"), LogLine(t + 2 * NS, "a2")])
    store.append(b, [LogLine(t + 1, "b0")])
    read = contextlib.closing(store.iter_read_stamped("tenx-alice", a.instance, "job-a", offset=1, size=5))
    with read as rows:
        assert list(rows) == [(t + 1, "a1"), (t + 2 * NS, "a2")]
    with contextlib.closing(store.iter_read_stamped("tenx-alice", a.instance, "job-a", day=D + dt.timedelta(days=1),
                                                    offset=0, size=5)) as rows:
        assert list(rows) == [(t + 2 * NS, "a2")]
    with contextlib.closing(store.iter_read_job_stamped("tenx-alice", "job-a", offset=1, size=2)) as rows:
        assert list(rows) == [("job-a-x7k2p", t + 1, "a1"), ("job-a-bbbbb", t + 1, "b0")]
    assert store.read_job("tenx-alice", "job-a", offset=1, size=2) == [("job-a-x7k2p", "a1"), ("job-a-bbbbb", "b0")]


def test_instance_records(store):
    assert store.instances("tenx-alice", "job-a") == []
    assert not store.known_instance("tenx-alice", "job-a", "job-a-bbbbb")
    store.put_instance("tenx-alice", "job-a", "job-a-bbbbb", {"name": "job-a-bbbbb", "phase": "Running",
                                                               "created": "2026-11-25T10:00:00Z"})
    store.put_instance("tenx-alice", "job-a", "job-a-aaaaa", {"name": "job-a-aaaaa", "phase": "Pending",
                                                               "created": "2026-11-25T11:00:00Z"})
    store.put_instance("tenx-alice", "job-a", "job-a-ccccc", {"name": "job-a-ccccc",
                                                               "created": "2026-11-25T10:00:00Z"})
    failed = {"name": "job-a-bbbbb", "phase": "Failed", "created": "2026-11-25T10:00:00Z",
              "finished": "2026-11-25T10:05:00Z", "restarts": 2, "node": "node-1",
              "containers": [{"name": "job-a", "state": "terminated", "exitCode": 137, "reason": "OOMKilled",
                              "message": "内存不足"}]}
    store.put_instance("tenx-alice", "job-a", "job-a-bbbbb", failed)
    records = store.instances("tenx-alice", "job-a")
    assert [r["name"] for r in records] == ["job-a-bbbbb", "job-a-ccccc", "job-a-aaaaa"]
    assert records[0] == failed
    assert store.known_instance("tenx-alice", "job-a", "job-a-bbbbb")
    assert not store.known_instance("tenx-alice", "job-b", "job-a-bbbbb")
    store.append(ContainerKey("tenx-alice", "job-b", "job-b-ddddd", "job-b"), lines("2026-11-25T10:00:00Z", ["x"]))
    assert store.known_instance("tenx-alice", "job-b", "job-b-ddddd")
    assert store.instances("tenx-bob", "job-a") == []


def test_prune_drops_old_days_and_finished_instances(store):
    old, mid, new = "2026-11-20T10:00:00Z", "2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z"
    done = ContainerKey("tenx-alice", "job-a", "job-a-done", "job-a")  # finished long ago
    running = ContainerKey("tenx-alice", "job-a", "job-a-runs", "job-a")  # still running, old and new lines
    store.append(done, lines(old, ["d0", "d1"]))
    store.put_instance("tenx-alice", "job-a", "job-a-done", {"name": "job-a-done", "finished": old})
    store.append(running, lines(old, ["r0"]) + lines(mid, ["r1"]) + lines(new, ["r2", "r3"]))
    store.put_instance("tenx-alice", "job-a", "job-a-runs", {"name": "job-a-runs", "finished": None})
    assert store.prune(D - dt.timedelta(days=1)) == 2 + 1 + 1  # d0, d1, r0, and job-a-done's record
    assert store.read("tenx-alice", "job-a-runs", "job-a") == ["r1", "r2", "r3"]
    assert store.read("tenx-alice", "job-a-runs", "job-a", day=D) == ["r2", "r3"]
    assert store.read("tenx-alice", "job-a-done", "job-a") == []
    assert [r["name"] for r in store.instances("tenx-alice", "job-a")] == ["job-a-runs"]
    assert not store.known_instance("tenx-alice", "job-a", "job-a-done")
    assert store.resume_point(running).lines_at_last_ts == 1
    assert store.read("tenx-alice", "job-a-runs", "job-a", offset=1, size=2) == ["r2", "r3"]  # from r1, now first
    store.append(running, lines("2026-11-25T11:00:00Z", ["r4"]))
    assert store.read("tenx-alice", "job-a-runs", "job-a", offset=3) == ["r4"]
    assert store.prune(D - dt.timedelta(days=1)) == 0


def test_delete_job(store):
    store.append(KEY, lines("2026-11-25T10:00:00Z", ["a", "b"]))
    store.put_instance("tenx-alice", "job-a", "job-a-x7k2p", {"name": "job-a-x7k2p"})
    assert store.delete_job("tenx-alice", "job-a") == 3
    assert store.read_job("tenx-alice", "job-a") == [] and store.instances("tenx-alice", "job-a") == []
    assert store.resume_point(KEY) == ResumePoint(None, 0)


def test_concurrent_appends_and_reads(store):
    keys = [ContainerKey("tenx-alice", "job-a", f"job-a-{i}", "job-a") for i in range(4)]
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def write(key):
        try:
            for batch in range(25):
                store.append(key, lines(f"2026-11-25T10:{batch:02d}:00Z", [f"{batch}.{i}" for i in range(40)],
                                        step_ns=1000))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def read():
        try:
            while writing.is_set():
                for key in keys:
                    page = store.read(key.namespace, key.instance, key.container, day=D, offset=0, size=50)
                    assert page == [f"{n // 40}.{n % 40}" for n in range(len(page))]
                store.read_job("tenx-alice", "job-a", size=100)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(k,)) for k in keys]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    writing.clear()
    for t in readers:
        t.join()
    assert errors == []
    for key in keys:
        got = store.read(key.namespace, key.instance, key.container, size=2000)
        assert got == [f"{b}.{i}" for b in range(25) for i in range(40)]
    assert len(store.read_job("tenx-alice", "job-a", day=D, size=5000)) == 4000


def test_appends_to_one_container_from_two_threads_are_serialized(store):
    """The collector should not do this, but if it does, no line may be lost or numbered twice."""
    def write(name):
        for batch in range(20):
            store.append(KEY, [LogLine(ts("2026-11-25T10:00:00Z") + batch, f"{name}{batch}")] * 3)

    threads = [threading.Thread(target=write, args=(name,)) for name in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.read("tenx-alice", "job-a-x7k2p", "job-a", day=D, size=500)
    assert sorted(got) == sorted(f"{n}{b}" for n in "ab" for b in range(20) for _ in range(3))
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=119) == [got[-1]]


def test_a_deep_page_is_an_indexed_range_read(archive):
    """100,000 lines over three days; day D holds 60,000 of them, seq 20,000..79,999. No step of the plan may scan
    a table: the container is found by its unique key, its lines by a range of an index."""
    store = archive()
    start = dt.datetime.combine(D, dt.time(0), dt.timezone.utc)
    per_day = [20_000, 60_000, 20_000]
    batch = []
    for d, count in enumerate(per_day):
        base = int((start + dt.timedelta(days=d - 1)).timestamp()) * NS
        batch += [LogLine(base + i * 1_000_000, f"day {d} line {i}") for i in range(count)]
    store.append(KEY, batch)
    for i in range(300):  # enough containers that looking one up by name is worth an index, too
        store.append(ContainerKey("tenx-alice", f"job-{i // 3}", f"job-{i // 3}-{i}", "main"), batch[i:i + 10])
    store.analyze()
    args = ("tenx-alice", "job-a-x7k2p", "job-a")
    assert store.read(*args, day=D, offset=50_000, size=100) == [f"day 1 line {i}" for i in range(50_000, 50_100)]
    assert store.read(*args, offset=70_000, size=100) == [f"day 1 line {i}" for i in range(50_000, 50_100)]
    assert store.read(*args, day=D, offset=59_950, size=100) == [f"day 1 line {i}" for i in range(59_950, 60_000)]
    by_day = store.explain_read(*args, day=D, offset=50_000, size=100)
    whole = store.explain_read(*args, offset=70_000, size=100)
    print(f"\n{archive.kind} plan, by day:\n{by_day}\n{archive.kind} plan, whole log:\n{whole}")
    if archive.kind == "sqlite":
        assert "SEARCH log_lines USING INDEX log_lines_day (stream=? AND day=? AND day_seq>? AND day_seq<?)" in by_day
        assert "SEARCH log_lines USING PRIMARY KEY (stream=? AND seq>? AND seq<?)" in whole
        for plan in (by_day, whole):
            assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    elif archive.kind == "opensearch":  # one stream's lines by a range on a numeric field, from=0 at any depth
        assert "day_seq:[50000 TO 50099]" in by_day and "from=0" in by_day, by_day
        assert "seq:[70000 TO 70099]" in whole and "from=0" in whole, whole
        for plan in (by_day, whole):
            assert "stream:tenx-alice/job-a-x7k2p/job-a" in plan and "size=100 " in plan, plan
    else:
        assert any(f"{scan} using log_lines_day on log_lines" in by_day for scan in ("Index Scan", "Index Only Scan",
                                                                                     "Bitmap Index Scan"))
        assert any(f"{scan} using log_lines_pkey on log_lines" in whole for scan in ("Index Scan", "Index Only Scan",
                                                                                    "Bitmap Index Scan"))
        for plan in (by_day, whole):
            assert "Seq Scan" not in plan and "Sort" not in plan, plan


def test_open_store_rejects_what_it_cannot_open(tmp_path):
    with pytest.raises(ValueError, match="unsupported log archive URL"):
        open_store("mysql://localhost/archive", "UTC")
    with pytest.raises(Exception, match="No time zone found"):
        open_store(f"sqlite:///{tmp_path}/a.db", "Mars/Olympus_Mons")


def test_an_archive_outlives_its_store(archive):
    first = archive()
    first.append(KEY, lines("2026-11-25T10:00:00Z", ["kept"]))
    first.close()
    again = archive()
    assert again.read("tenx-alice", "job-a-x7k2p", "job-a") == ["kept"]
    again.append(KEY, lines("2026-11-25T10:00:01Z", ["and more"]))
    assert again.read("tenx-alice", "job-a-x7k2p", "job-a", day=D) == ["kept", "and more"]


def test_delete_namespace_forgets_its_lines_and_records_only(store):
    store.append(KEY, lines("2026-11-25T10:00:00Z", ["a", "b"]))
    store.put_instance("tenx-alice", "job-a", "job-a-x7k2p", {"name": "job-a-x7k2p"})
    bob = ContainerKey("tenx-bob", "job-a", "job-a-bbbbb", "job-a")
    store.append(bob, lines("2026-11-25T10:00:00Z", ["kept"]))
    assert store.delete_namespace("tenx-alice") == 3
    assert store.read_job("tenx-alice", "job-a") == [] and store.instances("tenx-alice", "job-a") == []
    assert not store.known_instance("tenx-alice", "job-a", "job-a-x7k2p")
    assert store.read_job("tenx-bob", "job-a") == [("job-a-bbbbb", "kept")]
    assert store.delete_namespace("tenx-nobody") == 0


def test_a_deposed_writer_is_refused_in_the_appending_transaction(store):
    """Fencing: once a writer with token 6 appended, a writer with token 5 (the old leader, resumed) is refused
    and nothing it sent is kept; an append that expects another next line number is refused too."""
    from gateway.store import Deposed, StreamMoved
    store.append(KEY, lines("2026-11-25T10:00:00Z", ["a", "b"]), fence=5)
    store.append(KEY, lines("2026-11-25T10:00:02Z", ["c"]), fence=6, expect_next=2)
    with pytest.raises(Deposed):
        store.append(KEY, lines("2026-11-25T10:00:03Z", ["stale"]), fence=5)
    with pytest.raises(StreamMoved):
        store.append(KEY, lines("2026-11-25T10:00:03Z", ["twice"]), fence=6, expect_next=2)
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a") == ["a", "b", "c"]
    assert store.max_fence() == 6
    store.append(KEY, lines("2026-11-25T10:00:04Z", ["d"]), fence=7, attempt=1, expect_next=3)
    assert store.resume_point(KEY).attempt == 1 and store.read("tenx-alice", "job-a-x7k2p", "job-a")[-1] == "d"


def test_heartbeats(store):
    assert store.heartbeats() == {}
    store.heartbeat("us", "collector-1", 0.25)
    store.heartbeat("us", "collector-2", 1.5)
    (age, lag), = store.heartbeats().values()
    assert 0 <= age < 60 and lag == 1.5


def test_job_pages_walk_an_index_from_a_remembered_cursor(archive):
    """Keyset paging: 3 instances x 2,000 lines; every page, fresh or continued from a remembered cursor, equals
    the slice of the whole order, and the plan reads log_lines_job in order (no sort of the job)."""
    store = archive()
    t = ts("2026-11-25T10:00:00Z")
    keys = [ContainerKey("tenx-alice", "job-k", f"job-k-{i}", "job-k") for i in range(3)]
    for i, key in enumerate(keys):
        store.append(key, [LogLine(t + n * 1000 + i, f"{i}:{n}") for n in range(2000)])
    store.analyze()
    whole = store.read_job("tenx-alice", "job-k", size=10_000)
    assert len(whole) == 6000 and whole[:3] == [("job-k-0", "0:0"), ("job-k-1", "1:0"), ("job-k-2", "2:0")]
    for offset in range(0, 6000, 700):  # sequential pages: each continues from the cursor the last one left
        assert store.read_job("tenx-alice", "job-k", offset=offset, size=700) == whole[offset:offset + 700]
    for offset in (5999, 10, 3333, 0):  # and jumps back and forth
        assert store.read_job("tenx-alice", "job-k", offset=offset, size=5) == whole[offset:offset + 5]
    assert store.read_job("tenx-alice", "job-k", day=D, offset=4000, size=3) == whole[4000:4003]
    with contextlib.closing(store.iter_read_job("tenx-alice", "job-k", offset=100)) as rows:
        assert next(rows) == whole[100]
    plan = store.explain_read_job("tenx-alice", "job-k")
    print(f"\n{archive.kind} job page plan:\n{plan}")
    if archive.kind == "sqlite":
        assert "log_lines_job" in plan and "TEMP B-TREE" not in plan, plan
    elif archive.kind == "opensearch":
        assert "search_after" in plan and "#namespace:tenx-alice #job:job-k" in plan, plan
    else:
        assert "log_lines_job" in plan and "Sort" not in plan, plan


def test_an_archive_page_streams_from_the_cursor(store):
    """A reader that stops early takes only what it used: the rest stays in the database."""
    store.append(KEY, lines("2026-11-25T10:00:00Z", [f"line {i}" for i in range(500)]))
    with contextlib.closing(store.iter_read("tenx-alice", "job-a-x7k2p", "job-a", offset=10, size=400)) as rows:
        assert [next(rows) for _ in range(3)] == ["line 10", "line 11", "line 12"]
    store.append(KEY, lines("2026-11-25T11:00:00Z", ["after"]))  # the connection went back: writes go on
    assert store.read("tenx-alice", "job-a-x7k2p", "job-a", offset=500) == ["after"]


def test_the_write_mark_rises_by_region_and_keeps_its_doubt(store):
    """The API replicas' read-your-writes mark (gateway/kube/cache/write_mark.py) in every store."""
    assert store.write_mark("us") == (0, 0.0, 0.0)
    before = time.time()
    store.raise_write_mark("us", 41)
    store.raise_write_mark("us", 7)
    version, raised, doubt_until = store.write_mark("us")
    assert version == 41 and raised >= before and doubt_until == 0
    store.doubt_writes("us", before + 60)
    store.doubt_writes("us", before + 5)
    assert store.write_mark("us") == (41, raised, before + 60)
    assert store.write_mark("eu") == (0, 0.0, 0.0)


def test_a_position_alone_moves_and_makes_the_stream(store):
    """An append of no lines with a position (a node collector's attempt ended with nothing left): the stream
    exists, holds no line, and resumes from that position."""
    key = ContainerKey("tenx-a", "job", "pod", "job")
    store.append(key, [], attempt=0, expect_next=0, position={"v": 1, "attempt": 1, "file": None, "offset": 0})
    point = store.resume_point(key)
    assert point.next_seq == 0 and point.position == {"v": 1, "attempt": 1, "file": None, "offset": 0}
    assert store.read("tenx-a", "pod", "job") == []
    store.append(key, [LogLine(5, "a")], attempt=1, expect_next=0, position={"v": 1, "attempt": 1, "file": "f",
                                                                             "offset": 9})
    store.append(key, [], attempt=2, expect_next=1, position={"v": 1, "attempt": 2, "file": None, "offset": 0})
    assert store.resume_point(key).attempt == 1  # its last line's attempt, not the position's


# The daily indices' mapping before the lean one (every field indexed): archives written then must read the same.
LINE_MAPPING_BEFORE_LEAN = {"dynamic": False, "properties": {
    "namespace": {"type": "keyword"}, "job": {"type": "keyword"}, "instance": {"type": "keyword"},
    "container": {"type": "keyword"}, "stream": {"type": "keyword"}, "attempt": {"type": "integer"},
    "stream_no": {"type": "long"}, "seq": {"type": "long"}, "day": {"type": "integer"}, "day_seq": {"type": "long"},
    "ts_ns": {"type": "long"}, "@timestamp": {"type": "date", "format": "epoch_millis"},
    "text": {"type": "keyword", "index": False, "doc_values": False}}}


def test_opensearch_reads_daily_indices_of_the_earlier_mapping_with_the_new(opensearch_dsn):
    """A day's index made under the earlier template (all fields indexed) beside one made under the new (only
    what the store filters or sorts on): pages, job pages, delete and prune answer across both."""
    from opensearchpy import OpenSearch

    from gateway.store.opensearch import parse_url

    options = parse_url(opensearch_dsn)
    client = OpenSearch(**options["client"])
    before, after = f"{options['prefix']}2026.11.25", f"{options['prefix']}2026.11.26"
    client.indices.create(index=before, body={"settings": {"number_of_replicas": 0},
                                              "mappings": LINE_MAPPING_BEFORE_LEAN})
    store = open_store(opensearch_dsn)
    try:
        a, b = KEY, ContainerKey("tenx-alice", "job-a", "job-a-bbbbb", "job-a")
        store.append(a, lines("2026-11-25T23:59:58Z", ["a0", "a1", "a2", "a3"]))  # two on each day
        store.append(b, lines("2026-11-25T23:59:58.5Z", ["b0", "b1", "b2", "b3"]))
        indexed = client.indices.get_mapping(index=f"{before},{after}")
        assert "instance" in indexed[before]["mappings"]["properties"]
        assert "instance" not in indexed[after]["mappings"]["properties"]  # the new template made it
        assert indexed[after]["mappings"]["properties"]["ts_ns"].get("index") is False
        assert store.read(*_where(a), offset=1, size=2) == ["a1", "a2"]  # across the two indices
        assert store.read(*_where(a), day=D) == ["a0", "a1"]
        assert store.read(*_where(b), day=D + dt.timedelta(days=1)) == ["b2", "b3"]
        assert [text for _, text in store.read_job("tenx-alice", "job-a")] == [
            "a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"]
        assert [text for _, text in store.read_job("tenx-alice", "job-a", offset=3, size=3)] == ["b1", "a2", "b2"]
        assert [text for _, text in store.read_job("tenx-alice", "job-a", day=D + dt.timedelta(days=1))] == [
            "a2", "b2", "a3", "b3"]
        assert store.prune(D + dt.timedelta(days=1)) == 4
        assert store.read(*_where(a)) == ["a2", "a3"]
        assert store.delete_job("tenx-alice", "job-a") == 4
        assert store.read(*_where(b)) == [] and store.read_job("tenx-alice", "job-a") == []
    finally:
        store.close()
        client.close()


def _where(key: ContainerKey) -> tuple[str, str, str]:
    return key.namespace, key.instance, key.container


def test_the_log_end_counts_what_a_read_reaches_with_the_point_of_the_same_moment(store):
    key = ContainerKey("tenx-a", "job", "pod", "job")
    assert store.log_end(key) == (ResumePoint(None, 0), 0)
    day1 = dt.datetime(2026, 1, 1, 23, 59, 59, tzinfo=dt.timezone.utc).timestamp()
    store.append(key, [LogLine(int(day1 * NS) + i, f"a{i}") for i in range(3)], expect_next=0)
    store.append(key, [LogLine(int((day1 + 2) * NS) + i, f"b{i}") for i in range(2)], expect_next=3)
    point, count = store.log_end(key)
    assert count == 5 and point == store.resume_point(key)
    assert store.log_end(key, dt.date(2026, 1, 1))[1] == 3
    assert store.log_end(key, dt.date(2026, 1, 2))[1] == 2
    assert store.log_end(key, dt.date(2026, 1, 3))[1] == 0
    store.catch_up()
    assert store.read("tenx-a", "pod", "job", offset=0, size=10) == ["a0", "a1", "a2", "b0", "b1"]
