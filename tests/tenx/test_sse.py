"""tenx.sse: the event-stream framing as the HTML standard has it, whatever the chunking."""
import pytest

from tenx.sse import Event, Parser, lines

STREAM = (b"retry: 2000\n\n"
          b": keepalive\n\n"
          b'id: 0\ndata: {"offset": 0, "line": "test-cmd"}\n\n'
          b"id: 1\r\ndata: first\r\ndata: second\r\n\r\n"
          b"id: 2\rdata:no space\r\r"
          b"event: end\ndata: {\"status\": \"succeeded\"}\n\n"
          b"data: never dispatched (no blank line)")


def test_events_and_ids():
    parser = Parser()
    events = list(parser.events([STREAM]))
    assert events == [
        Event("message", '{"offset": 0, "line": "test-cmd"}', "0", 2000),
        Event("message", "first\nsecond", "1", 2000),
        Event("message", "no space", "2", 2000),
        Event("end", '{"status": "succeeded"}', "2", 2000),
    ]
    assert events[0].json() == {"offset": 0, "line": "test-cmd"}
    assert parser.last_event_id == "2" and parser.retry == 2000


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_events(size):
    chunks = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert list(Parser().events(chunks)) == list(Parser().events([STREAM]))


def test_utf8_split_across_chunks_and_crlf_split_across_chunks():
    text = "data: caf\u00e9 \u4e2d\r\n\r\n".encode()
    cut = text.index(b"\xc3") + 1
    assert [e.data for e in Parser().events([text[:cut], text[cut:]])] == ["caf\u00e9 \u4e2d"]
    assert list(lines([b"a\r", b"\nb\r", b"\r\n"])) == ["a", "b", ""]


def test_resume_keeps_the_last_id_and_empty_data_is_not_an_event():
    parser = Parser(last_event_id="41")
    assert list(parser.events([b"event: status\n\n: c\n\n"])) == []
    assert parser.last_event_id == "41"
    assert [e.id for e in parser.events([b"data: x\n\n"])] == ["41"]
    assert list(Parser().events([b"id: a\0b\ndata: y\n\n"]))[0].id is None  # an id with NUL is ignored
