"""How results are shown: tables (rich on a terminal, plain aligned columns otherwise), JSON, YAML, names.

Colours and spinners only when the stream is a terminal (and ``NO_COLOR`` is unset): piped output stays plain for
``awk``/``grep``, and ``-o json|yaml`` is always exactly the document.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Sequence, TextIO

from .escape import escape

FORMATS = ("table", "wide", "json", "yaml", "name")
STATUS_STYLES = {"succeeded": "green", "failed": "red", "running": "cyan", "pending": "yellow",
                 "queued": "yellow", "deleted": "magenta", "Succeeded": "green", "Failed": "red", "Running": "cyan",
                 "Pending": "yellow"}


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colour_on(stream: TextIO) -> bool:
    return is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def to_yaml(document: Any) -> str:
    import yaml  # PyYAML: already installed with the kubernetes client; loaded only for -o yaml
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


def emit_document(document: Any, fmt: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(to_json(document) + "\n" if fmt == "json" else to_yaml(document))
    stream.flush()


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kubectl-like columns: upper-case headers, two spaces between columns, no trailing blanks."""
    table = [list(headers)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]], status_column: int | None = None):
    from rich.table import Table
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    for row in rows:
        cells: list[Any] = [str(cell) for cell in row]
        if status_column is not None and cells[status_column] in STATUS_STYLES:
            from rich.text import Text
            cells[status_column] = Text(cells[status_column], style=STATUS_STYLES[cells[status_column]])
        table.add_row(*cells)
    return table


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, status_column: int | None = None,
                stream: TextIO | None = None) -> None:
    """Cells come from the gateway (reasons, commands): shown escaped, as log lines are."""
    stream = stream or sys.stdout
    rows = [[escape(str(cell)) for cell in row] for row in rows]
    if colour_on(stream):
        from rich.console import Console
        Console(file=stream).print(rich_table(headers, rows, status_column))
    else:
        stream.write(plain_table(headers, rows))
        stream.flush()


def styled(text: str, style: str, stream: TextIO | None = None) -> str:
    """``text`` in an ANSI style when ``stream`` is a colour terminal (for the few words outside tables)."""
    if not colour_on(stream or sys.stdout):
        return text
    codes = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "magenta": "35", "dim": "2", "bold": "1"}
    return f"\033[{codes.get(style, '0')}m{text}\033[0m"


@contextmanager
def spinner(text: str, stream: TextIO | None = None) -> Iterator[Any]:
    """A spinner on a terminal (``update(text)`` changes its words); nothing at all otherwise. While it spins,
    lines written to stdout go above it, if stdout is that terminal too (never a pipe's lines onto the screen)."""
    stream = stream or sys.stderr
    if not colour_on(stream):
        yield lambda _text: None
        return
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner
    wheel = Spinner("dots", text=text)
    with Live(wheel, console=Console(file=stream), transient=True, refresh_per_second=8,
              redirect_stdout=is_tty(sys.stdout), redirect_stderr=False):
        yield lambda new: wheel.update(text=new)
