"""static/chat/roomstate.js, run in real Chromium against the cases the Python
SeqTracker is tested on (tests/roomstate_cases.json)."""

import json
from pathlib import Path

import pytest

CASES = json.loads((Path(__file__).parents[1] / "roomstate_cases.json").read_text())

pytestmark = pytest.mark.django_db(transaction=True)

RUN_CASES = """async (cases) => {
  const { RoomState } = await import("/static/chat/roomstate.js");
  return cases.map((c) => {
    const state = new RoomState("room", c.low);
    const results = c.accept.map((seq) => state.accept(seq));
    const above = [...state.above].sort((x, y) => x - y);
    return { results, after: { low: state.low, high: state.high, above } };
  });
}"""


async def test_the_browser_room_state_follows_the_shared_cases(browser, start_server):
    server = start_server(DEBUG="1")
    page = await browser.new_page()
    await page.goto(server.http_url + "/")
    outcomes = await page.evaluate(RUN_CASES, CASES)
    for case, outcome in zip(CASES, outcomes, strict=True):
        assert outcome == {"results": case["results"], "after": case["after"]}, case["name"]
