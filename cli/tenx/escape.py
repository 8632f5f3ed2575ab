"""A job's output must not drive the user's terminal (pure).

Log lines are the job's own bytes, so they may carry what a terminal obeys: OSC 52 (writes the clipboard), OSC 8
links, window titles, clear-screen, hidden or blinking text, a ``\\r`` that overwrites what was printed, a BEL. Every
C0 control but tab, DEL and every C1 control is shown as a visible escape (``\\x1b``, ``\\r``, ``\\x9b``), whether
stdout is a terminal or a pipe (a pipe often ends on a terminal: ``| less -R``, ``| tail``), so the CSI, OSC and DCS
sequences they introduce become plain text. ``--raw`` prints the lines exactly as the gateway sent them.

Backslashes are not doubled: the result is for reading, not for parsing back (``--raw`` or ``-o json`` are).
"""
from __future__ import annotations

import re

# C0 (U+0000-U+001F) but TAB; DEL (U+007F); C1 (U+0080-U+009F), whose CSI (U+009B), OSC (U+009D) and DCS (U+0090)
# some terminals obey like ESC [, ESC ] and ESC P. LF never reaches here: it ends the line.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\x1b": "\\x1b"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def escape(line: str) -> str:
    """``line`` with every control character but tab spelled out; a final ``\\r`` (a CRLF line end, which cannot
    overwrite anything) is dropped."""
    if line.endswith("\r"):
        line = line[:-1]
    return _CONTROL.sub(_visible, line) if _CONTROL.search(line) else line
