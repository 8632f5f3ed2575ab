"""A browser's EventSource follows a job's log: headless Chromium (Debian's, driven by Playwright) on a page of
the gateway's own origin gets a stream token with the headers, then opens ``EventSource`` with it in the URL (an
EventSource cannot send headers) and receives every line and the end event."""
from __future__ import annotations

from tests.support.streams import create, ticking

FOLLOW_IN_PAGE = """
async ([username, token, logs]) => {
  const issued = await fetch("/v1/regions/us/stream-tokens",
                             {method: "POST", headers: {"username": username, "Authorization": "token " + token}});
  const {stream_token} = await issued.json();
  return await new Promise((resolve, reject) => {
    const got = [];
    const source = new EventSource(logs + "?follow=true&stream_token=" + encodeURIComponent(stream_token));
    source.onmessage = (e) => got.push({id: e.lastEventId, data: JSON.parse(e.data)});
    source.addEventListener("end", (e) => { source.close(); resolve({lines: got, end: JSON.parse(e.data)}); });
    source.addEventListener("error", (e) => { if (e.data) { source.close(); reject(e.data); } });
    setTimeout(() => { source.close(); reject("no end within 60 s: " + JSON.stringify(got)); }, 60000);
  });
}
"""


def test_an_eventsource_with_a_stream_token_receives_the_lines(browser, gateway, user):
    name, instance = create(user, ticking(lines=10, period=0.2))
    page = browser.new_page()
    try:
        page.goto(f"{gateway.url}/healthz")
        token = user.session.headers["Authorization"].split(" ", 1)[1]
        result = page.evaluate(FOLLOW_IN_PAGE, [user.username, token,
                                                f"/v1/regions/us/jobs/{name}/instances/{instance}/logs"])
    finally:
        page.close()
    assert [line["id"] for line in result["lines"]] == [str(n) for n in range(10)]
    assert [int(line["data"]["line"].split()[0]) for line in result["lines"]] == list(range(10))
    assert result["end"] == {"instance": instance, "exit_code": 0, "reason": "Completed", "phase": "Succeeded"}
