"""A stream's events as the tests compare them, read by the ``tenx`` client's parser (cli/tenx/sse.py, which
follows the SSE standard): each event a dict of the fields it carried itself, ``data`` always, ``event`` when it was
named and ``id`` when it had an id of its own (the standard's last event id, which carries over to the events after
it, is what a reconnect sends; a test asks what the server wrote)."""
from __future__ import annotations

from tenx.sse import Parser


def parse(text: str) -> list[dict[str, str]]:
    parser = Parser()
    events = []
    for event in parser.events([text.encode()]):
        fields = {"data": event.data}
        if event.event != "message":  # the name of an unnamed event; the gateway names none "message"
            fields["event"] = event.event
        if event.id is not None:
            fields["id"] = event.id
        events.append(fields)
        parser.last_event_id = None  # read on: the next event shows an id only if it carries one
    return events
