"""A job's output cannot drive the terminal: every C0 control but tab, DEL and every C1 control is spelled out, so
the CSI, OSC and DCS sequences they start are plain text; ``--raw`` writes the lines byte for byte."""
from __future__ import annotations

import io

import pytest

from tenx.escape import escape
from tenx.lines import LinePrinter

C0 = [chr(c) for c in range(0x20) if chr(c) not in "\t\n"]
C1 = [chr(c) for c in range(0x80, 0xA0)]
HOSTILE = ["\x1b]52;c;aGFja2Vk\x07",                      # OSC 52: writes the clipboard
           "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8: a link
           "\x1b]0;window title\x07", "\x1b[2J\x1b[H",    # a title; clear the screen
           "\x1b[8mhidden\x1b[0m", "\x1bP+q544e\x1b\\",     # hidden text; DCS (an XTGETTCAP query)
           "\x9b31mred", "\x9d0;title\x9c",                # 8-bit CSI and OSC
           "secret\roverwritten"]


@pytest.mark.parametrize("char", C0 + ["\x7f"] + C1)
def test_every_control_but_tab_is_spelled_out(char):
    shown = escape(f"a{char}b")
    assert shown.startswith("a\\") and shown.endswith("b")
    assert not any(c in shown for c in C0 + ["\x7f"] + C1)


def test_the_spellings():
    assert escape("\x1b[31m\r\x00\x07\x7f\x9b\x85") == "\\x1b[31m\\r\\x00\\x07\\x7f\\x9b\\x85"


@pytest.mark.parametrize("line", HOSTILE)
def test_sequences_lose_their_introducer(line):
    shown = escape(line)
    assert all(ord(c) >= 0x20 and not 0x7f <= ord(c) < 0xa0 for c in shown)


def test_text_tabs_and_a_crlf_end_stay_as_they_read():
    assert escape("plain text, ünïcödé 漢字 and\ttabs") == "plain text, ünïcödé 漢字 and\ttabs"
    assert escape("a windows line\r") == "a windows line"  # a CRLF end cannot overwrite anything
    assert escape("a\r\r") == "a\\r"


class Terminal(io.TextIOWrapper):
    def isatty(self):
        return True


def printed(raw: bool, tty: bool, *lines: tuple) -> bytes:
    buffer = io.BytesIO()
    stream = (Terminal if tty else io.TextIOWrapper)(buffer, encoding="ascii", errors="backslashreplace")
    printer = LinePrinter(stream=stream, raw=raw)
    for line in lines:
        printer(*line)
    stream.flush()
    return buffer.getvalue()


@pytest.mark.parametrize("tty", [True, False])
def test_the_printer_escapes_on_a_terminal_and_in_a_pipe(tty, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = printed(False, tty, (None, HOSTILE[0]), ("j-a", "\x1b[2Jx", "2026-11-28T09:00:00.000000000Z"))
    assert out == b"\\x1b]52;c;aGFja2Vk\\x07\n2026-11-28T09:00:00.000000000Z \\x1b[2Jx\n"


def test_raw_is_byte_for_byte_whatever_the_streams_encoding():
    every = "".join(C0 + ["\x7f"] + C1) + "é漢"
    assert printed(True, False, (None, every), (None, HOSTILE[1])) == \
        every.encode() + b"\n" + HOSTILE[1].encode() + b"\n"


def test_several_instances_are_prefixed_and_the_prefix_is_not_escaped_away(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = printed(False, False, ("j-a", "one\x07"), ("j-b", "two"))
    assert out == b"one\\x07\n[j-b] two\n"  # the first instance alone is not prefixed until a second shows
