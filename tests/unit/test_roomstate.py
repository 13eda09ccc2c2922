from chat.roomstate import SeqTracker


def test_in_order_seqs_advance_the_watermark():
    tracker = SeqTracker()
    assert [tracker.accept(seq) for seq in (1, 2, 3)] == [True, True, True]
    assert (tracker.low, tracker.high, tracker.missing()) == (3, 3, [])


def test_duplicates_are_refused():
    tracker = SeqTracker(low=5)
    assert tracker.accept(5) is False
    assert tracker.accept(7) is True
    assert tracker.accept(7) is False


def test_a_hole_is_reported_until_filled_in_any_order():
    tracker = SeqTracker(low=1)
    tracker.accept(4)
    tracker.accept(6)
    assert (tracker.low, tracker.high, tracker.missing()) == (1, 6, [2, 3, 5])
    tracker.accept(3)
    tracker.accept(2)
    assert (tracker.low, tracker.missing()) == (4, [5])
    tracker.accept(5)
    assert (tracker.low, tracker.above, tracker.missing()) == (6, set(), [])


def test_missing_up_to_a_known_last_seq():
    tracker = SeqTracker(low=2)
    tracker.accept(4)
    assert tracker.missing(upto=6) == [3, 5, 6]
