"""Value objects of speech: the text a request may have at its speed."""

from __future__ import annotations

import pytest

from domain.errors import InvalidRequest, TextTooLong
from domain.speech import check_length_for_speed


@pytest.mark.parametrize(
    ("speed", "limit"), [(1.0, 5000), (0.25, 1250), (0.29, 1450), (0.5, 2500), (4.0, 5000)]
)
def test_slower_speech_allows_proportionally_less_text(speed: float, limit: int) -> None:
    check_length_for_speed("a" * limit, speed, 5000)
    with pytest.raises(TextTooLong) as raised:
        check_length_for_speed("a" * (limit + 1), speed, 5000)
    assert str(limit + 1) in raised.value.message and str(limit) in raised.value.message
    assert "5000" in raised.value.message


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(InvalidRequest):
        check_length_for_speed("hello", speed, 5000)
