"""A container attempt's files read as one stream of entries across the kubelet's rotations: kept up with, fallen
behind, resumed from a position (plain or gzipped file), and a resume whose file the kubelet deleted."""
from __future__ import annotations

import os

from gateway.collector.cri import Joiner
from gateway.collector.files import AttemptLog, Position

from tests.support.kubelet_logs import FakeContainerLog


def drain(log: AttemptLog, joiner: Joiner | None = None, max_bytes: int = 4096) -> list[str]:
    joiner = joiner or Joiner()
    texts = []
    while data := log.read(max_bytes):
        texts += [line.text for line in joiner.feed(data)]
    return texts


def read_some(directory) -> tuple[list[int], Position]:
    """A first reader's numbers from the start of attempt 0, up to about 500 bytes, and where it stopped."""
    first = AttemptLog(str(directory), 0, None)
    first.refresh()
    seen = numbers([line.text for line in Joiner().feed(first.read(500))])
    position = first.position
    first.close()
    return seen, position


def numbers(texts: list[str]) -> list[int]:
    return [int(text.split()[-1]) for text in texts]


def test_reads_across_rotations_when_it_keeps_up(tmp_path):
    kubelet = FakeContainerLog(tmp_path, max_files=3)
    log = AttemptLog(str(tmp_path), 0, None, settle=0)
    log.refresh()
    seen = []
    for _ in range(6):
        kubelet.lines(50)
        seen += drain(log)
        kubelet.rotate()
    kubelet.lines(7)
    seen += drain(log)
    assert numbers(seen) == list(range(kubelet.written))


def test_a_reader_far_behind_reads_every_file_it_has_seen_even_once_deleted(tmp_path):
    kubelet = FakeContainerLog(tmp_path, max_files=2)
    log = AttemptLog(str(tmp_path), 0, None, settle=0)
    log.refresh()
    seen = []
    for _ in range(5):  # the reader only looks (as it does while busy), the kubelet rotates and deletes
        kubelet.lines(100)
        kubelet.rotate()
        log.refresh()
    kubelet.lines(3)
    assert len(os.listdir(tmp_path)) == 2  # the kubelet deleted three rotated files meanwhile
    seen += drain(log, max_bytes=1000)
    assert numbers(seen) == list(range(kubelet.written))


def test_resumes_at_a_position_in_the_live_file_and_in_a_gzipped_one(tmp_path):
    kubelet = FakeContainerLog(tmp_path, max_files=4)
    kubelet.lines(40)
    seen, position = read_some(tmp_path)
    kubelet.rotate()
    kubelet.lines(10)
    kubelet.rotate()  # the file of the position is gzipped now
    kubelet.lines(5)
    assert any(name.endswith(".gz") for name in os.listdir(tmp_path))
    again = AttemptLog(str(tmp_path), 0, position, settle=0)
    again.refresh()
    assert again.gap is None
    assert seen + numbers(drain(again)) == list(range(kubelet.written))


def test_a_position_whose_file_was_deleted_is_a_gap_and_reading_goes_on_after_it(tmp_path):
    kubelet = FakeContainerLog(tmp_path, max_files=2)
    kubelet.lines(20)
    first = AttemptLog(str(tmp_path), 0, None)
    first.refresh()
    first.read(300)
    position = first.position
    first.close()  # the collector stops; the kubelet goes on
    for _ in range(3):
        kubelet.lines(20)
        kubelet.rotate()
    kubelet.lines(4)
    again = AttemptLog(str(tmp_path), 0, position, settle=0)
    again.refresh()
    assert again.gap is not None and again.gap.after == position
    rest = numbers(drain(again))
    assert rest == list(range(rest[0], kubelet.written)) and rest[0] > 20


def test_a_rotated_file_is_finished_only_once_the_new_file_has_data_or_after_the_settle_time(tmp_path):
    kubelet = FakeContainerLog(tmp_path)
    kubelet.lines(3)
    log = AttemptLog(str(tmp_path), 0, None, settle=3600)
    log.refresh()
    assert len(drain(log)) == 3
    kubelet.rotate()
    assert drain(log) == []
    rotated = [name for name in os.listdir(tmp_path) if name != "0.log"][0]
    with open(tmp_path / rotated, "ab") as late:  # the runtime's last write, before it reopened
        late.write(b"2026-12-07T10:00:05Z stdout F late 3\n")
    kubelet.written += 1
    kubelet.lines(2)
    assert numbers(drain(log)) == [3, 4, 5]


def test_the_end_of_a_complete_attempt_and_a_position_past_it(tmp_path):
    kubelet = FakeContainerLog(tmp_path)
    kubelet.lines(5)
    log = AttemptLog(str(tmp_path), 0, None)
    log.refresh()
    assert len(drain(log)) == 5
    assert log.files  # the live file: it may grow
    log.complete = True
    assert drain(log) == [] and not log.files


def test_a_missing_directory_is_not_a_gap(tmp_path):
    log = AttemptLog(str(tmp_path / "nothing"), 0, Position("abc", 10))
    log.refresh()
    assert log.gap is None and not log.found and log.read(100) == b""


def test_a_file_held_while_empty_is_not_read_again_from_its_gzipped_copy(tmp_path):
    """The reader is behind: it holds the live file from when it was empty (no fingerprint yet); the kubelet
    rotates it, then gzips it. The copy must be known as the file already held (a bench run read 61,000 lines
    twice this way)."""
    kubelet = FakeContainerLog(tmp_path, max_files=5)
    kubelet.lines(100)
    log = AttemptLog(str(tmp_path), 0, None, settle=0)
    log.refresh()
    joiner = Joiner()
    seen = [line.text for line in joiner.feed(log.read(500))]  # behind: most of the first file is unread
    kubelet.rotate()
    log.refresh()  # holds the new, empty live file
    kubelet.lines(100)
    kubelet.rotate()
    kubelet.lines(100)
    kubelet.rotate()  # the file held while it was empty is gzipped now
    log.refresh()
    seen += drain(log, joiner)
    assert numbers(seen) == list(range(kubelet.written))


def test_a_resume_whose_live_file_rotated_between_the_listing_and_the_open_is_not_a_gap(tmp_path, monkeypatch):
    """The listing names <n>.log, the kubelet renames it and opens a new one, then the open takes the new one: the
    start's file is under its rotated name, which a second listing finds (a SIGKILL test hit this: a gap marker
    and the whole attempt read again)."""
    kubelet = FakeContainerLog(tmp_path, max_files=5)
    kubelet.lines(40)
    seen, position = read_some(tmp_path)
    stale = os.listdir(tmp_path)  # ["0.log"], listed before the rotation
    kubelet.rotate()
    kubelet.lines(5)
    real_listdir = os.listdir
    listings = iter([stale])
    monkeypatch.setattr("gateway.collector.files.os.listdir",
                        lambda path: next(listings, None) or real_listdir(path))
    resumed = AttemptLog(str(tmp_path), 0, position, settle=0)
    resumed.refresh()
    assert resumed.gap is None
    assert seen + numbers(drain(resumed)) == list(range(kubelet.written))
