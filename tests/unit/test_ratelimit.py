import pytest

from chat.protocol import ChatError, ErrorCode
from chat.ratelimit import Hold, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refuses_with_the_wait():
    clock = Clock()
    bucket = TokenBucket(burst=3, per_minute=60, clock=clock)
    assert [bucket.take() for _ in range(3)] == [None, None, None]
    assert bucket.take() == pytest.approx(1.0)


def test_refills_at_the_rate_and_caps_at_burst():
    clock = Clock()
    bucket = TokenBucket(burst=2, per_minute=120, clock=clock)
    bucket.take(), bucket.take()
    clock.now += 0.5  # one token back at 2/s
    assert bucket.take() is None
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 3600
    assert [bucket.take() for _ in range(3)][:2] == [None, None]


def test_rejects_a_bucket_that_never_refills():
    with pytest.raises(ValueError):
        TokenBucket(burst=1, per_minute=0)


def refusal(retry_after: float | None = 1.0) -> ChatError:
    return ChatError(ErrorCode.RATE_LIMITED, "sending too fast", retry_after=retry_after)


def test_a_hold_refuses_later_writes_until_the_refused_one_comes_again():
    clock = Clock()
    hold = Hold(clock=clock)
    hold.check(ref="a")
    hold.refused(refusal(1.0), ref="a")
    clock.now += 1.5  # past retry_after, within the grace: "b" still waits for "a"
    with pytest.raises(ChatError) as held:
        hold.check(ref="b")
    assert held.value.code == ErrorCode.RATE_LIMITED and held.value.ref == "b"
    assert held.value.retry_after == pytest.approx(0.05)
    hold.refused(held.value, ref="b")  # a held write does not take the hold over
    hold.check(ref="a")  # it came again
    hold.check(ref="b")


def test_a_hold_gives_up_a_write_never_sent_again_and_ignores_refusals_for_good():
    clock = Clock()
    hold = Hold(clock=clock)
    hold.refused(refusal(1.0), ref="a")
    with pytest.raises(ChatError) as held:
        hold.check(ref="b")
    assert held.value.retry_after == pytest.approx(1.05)
    clock.now += 1.0 + Hold.GRACE
    hold.check(ref="b")
    hold.refused(refusal(None), ref="b")  # refused for good: nothing to wait for
    hold.check(ref="c")
