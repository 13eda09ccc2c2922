"""The frame cache's page rule: served only whole and fresh, else None (the database)."""

from chat.realtime.framecache import MAX_AGE, RoomFrames


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def filled(seqs, clock=None) -> RoomFrames:
    frames = RoomFrames(size=10, clock=clock or Clock())
    for seq in seqs:
        frames.add(seq, f"m{seq}")
    return frames


def test_a_page_held_whole_is_served_newest_or_after_since():
    frames = filled(range(1, 8))
    assert frames.page(after=None, upto=7, limit=3) == ["m5", "m6", "m7"]
    assert frames.page(after=2, upto=7, limit=3) == ["m3", "m4", "m5"]
    assert frames.page(after=None, upto=2, limit=50) == ["m1", "m2"]
    assert frames.page(after=7, upto=7, limit=50) == []


def test_a_gap_or_a_seq_not_yet_seen_is_a_miss():
    frames = filled([1, 2, 4, 5])
    assert frames.page(after=None, upto=5, limit=4) is None
    assert frames.page(after=3, upto=6, limit=10) is None, "6 was committed but not seen here"
    assert frames.page(after=3, upto=5, limit=10) == ["m4", "m5"]


def test_the_oldest_frames_go_past_the_size_and_stale_ones_miss():
    clock = Clock()
    frames = filled(range(1, 16), clock)
    assert frames.page(after=None, upto=15, limit=10) is not None
    assert frames.page(after=4, upto=15, limit=2) is None, "5 went: only 10 are kept"
    clock.now += MAX_AGE + 1
    assert frames.page(after=None, upto=15, limit=1) is None


def test_a_change_drops_its_target_even_when_the_target_arrives_after_it():
    frames = filled([1, 2])
    frames.add(3, "edit of 1", target=1)
    assert frames.page(after=None, upto=3, limit=3) is None
    frames.add(5, "delete of 4", target=4)  # from another process, ahead of 4 itself
    frames.add(4, "m4")
    assert frames.page(after=3, upto=5, limit=2) is None, "4 is never held: it changed"


def test_a_delete_drops_every_entry_about_its_target_and_keeps_later_ones_out():
    frames = filled([1, 2])
    frames.add(3, "edit of 1: my password is hunter2", target=1)
    frames.add(4, "preview of 1", target=1)
    frames.add(5, "edit of 2", target=2)
    frames.add(6, "delete of 1", target=1, erase=True)
    assert frames.page(after=2, upto=6, limit=4) is None, "3 and 4 carried 1's text"
    assert frames.page(after=4, upto=6, limit=2) == ["edit of 2", "delete of 1"]
    frames.add(7, "a late edit of 1", target=1)  # from another process, behind the delete
    assert frames.page(after=6, upto=7, limit=1) is None
