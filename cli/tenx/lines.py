"""Writing followed log lines: prefixed with their instance when the job has several, coloured per instance on
a terminal, flushed line by line (a pipe reader sees each line as it comes)."""
from __future__ import annotations

import sys
from typing import Callable, TextIO

from .output import colour_on

_PALETTE = ("36", "33", "35", "32", "34", "91", "96", "93")


class LinePrinter:
    def __init__(self, *, prefix: bool = False, stream: TextIO | None = None,
                 on_first: Callable[[], None] | None = None):
        self.stream = stream or sys.stdout
        self.prefix = prefix          # forced on (the job may have several instances)
        self.colour = colour_on(self.stream)
        self.instances: dict[str, int] = {}
        self.count = 0
        self.on_first = on_first

    def __call__(self, instance: str | None, line: str) -> None:
        if self.count == 0 and self.on_first:
            self.on_first()
        self.count += 1
        if instance is not None and instance not in self.instances:
            self.instances[instance] = len(self.instances)
        if instance is not None and (self.prefix or len(self.instances) > 1):
            label = f"[{instance}]"
            if self.colour:
                label = f"\033[{_PALETTE[self.instances[instance] % len(_PALETTE)]}m{label}\033[0m"
            line = f"{label} {line}"
        self.stream.write(line + "\n")
        self.stream.flush()
