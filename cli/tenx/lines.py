"""Writing a job's log lines: escaped (``escape``) unless ``--raw``, prefixed with their instance when the job has
several, coloured per instance on a terminal, with their time on request (``--timestamps``), flushed line by line
(a pipe reader sees each line as it comes)."""
from __future__ import annotations

import sys
from typing import Callable, TextIO

from .escape import escape
from .output import colour_on

_PALETTE = ("36", "33", "35", "32", "34", "91", "96", "93")


class LinePrinter:
    def __init__(self, *, prefix: bool = False, stream: TextIO | None = None,
                 on_first: Callable[[], None] | None = None, raw: bool = False):
        self.stream = stream or sys.stdout
        self.prefix = prefix          # forced on (the job may have several instances)
        self.colour = colour_on(self.stream)
        self.raw = raw                # the lines exactly as the gateway sent them (UTF-8), controls and all
        self.instances: dict[str, int] = {}
        self.count = 0
        self.on_first = on_first

    def __call__(self, instance: str | None, line: str, time: str | None = None) -> None:
        """One line of ``instance`` (None: the only one, or a line the gateway already prefixed); ``time``: its
        RFC 3339 stamp, printed before it (after the prefix), as ``kubectl logs --prefix --timestamps`` does."""
        if self.count == 0 and self.on_first:
            self.on_first()
        self.count += 1
        text = line if self.raw else escape(line)
        if time is not None:
            text = f"{time} {text}"
        if instance is not None and instance not in self.instances:
            self.instances[instance] = len(self.instances)
        if instance is not None and (self.prefix or len(self.instances) > 1):
            label = f"[{instance}]"
            if self.colour:
                label = f"\033[{_PALETTE[self.instances[instance] % len(_PALETTE)]}m{label}\033[0m"
            text = f"{label} {text}"
        self.write(text)

    def write(self, text: str) -> None:
        if self.raw and hasattr(self.stream, "buffer"):
            # byte for byte what the job wrote (the gateway decoded it as UTF-8), whatever the locale's encoding
            self.stream.flush()
            self.stream.buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")
            self.stream.buffer.flush()
            return
        self.stream.write(text + "\n")
        self.stream.flush()
