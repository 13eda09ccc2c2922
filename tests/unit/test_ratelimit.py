import pytest

from chat.ratelimit import TokenBucket


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
