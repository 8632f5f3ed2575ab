"""tenx.output and tenx.lines: plain tables off a terminal, documents, prefixed lines."""
import io
import json

import yaml

from tenx.lines import LinePrinter
from tenx.output import emit_document, plain_table, print_table


def test_plain_table_aligns_without_trailing_blanks():
    assert plain_table(["NAME", "STATUS"], [["a-long-name", "ok"], ["b", ""]]) == \
        "NAME         STATUS\na-long-name  ok\nb\n"


def test_no_colour_off_a_terminal():
    sink = io.StringIO()
    print_table(["NAME", "STATUS"], [["j", "failed"]], status_column=1, stream=sink)
    assert "\033[" not in sink.getvalue() and sink.getvalue() == "NAME  STATUS\nj     failed\n"


def test_documents_are_exactly_the_data():
    data = {"jobs": [{"metadata": {"name": "j\u00e9"}}]}
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        sink = io.StringIO()
        emit_document(data, fmt, sink)
        assert load(sink.getvalue()) == data


def test_lines_prefixed_once_a_second_instance_shows_or_when_forced():
    sink = io.StringIO()
    printer = LinePrinter(stream=sink)
    printer("a-1", "one")
    printer("a-2", "two")
    printer(None, "bare")
    assert sink.getvalue() == "one\n[a-2] two\nbare\n"
    forced = io.StringIO()
    LinePrinter(prefix=True, stream=forced)("a-1", "one")
    assert forced.getvalue() == "[a-1] one\n"
