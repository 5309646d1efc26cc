from __future__ import annotations

from domain.token_bucket import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert all(bucket.take(1, 0.0) for _ in range(20))
    assert not bucket.take(1, 0.0)  # the burst is spent
    assert bucket.take(5, 0.5)  # half a second refills 5
    assert not bucket.take(1, 0.5)


def test_refill_is_capped_at_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    bucket.take(20, 0.0)
    assert not bucket.take(21, 100.0)
    assert bucket.take(20, 100.0)
