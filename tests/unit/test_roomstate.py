"""SeqTracker against the cases the browser's RoomState is tested on too
(tests/e2e/test_roomstate_js.py), so both clients follow one set of rules."""

import json
from pathlib import Path

import pytest

from chat.roomstate import SeqTracker

CASES = json.loads((Path(__file__).parents[1] / "roomstate_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_seq_tracker(case):
    tracker = SeqTracker(low=case["low"])
    assert [tracker.accept(seq) for seq in case["accept"]] == case["results"]
    after = {"low": tracker.low, "high": tracker.high, "above": sorted(tracker.above or ())}
    assert after == case["after"]
