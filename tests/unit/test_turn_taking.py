"""semantic_vad's eagerness, as OpenAI documents it: the longest an unfinished turn waits."""

from __future__ import annotations

import pytest

from domain.turn_taking import Eagerness, TurnDetection


@pytest.mark.parametrize(
    ("eagerness", "most_ms"), [("low", 8000), ("medium", 4000), ("auto", 4000), ("high", 2000)]
)
def test_eagerness_bounds_the_wait_of_an_unfinished_turn(
    eagerness: Eagerness, most_ms: int
) -> None:
    policy = TurnDetection().semantic(eagerness).endpointing()
    assert policy.semantic and policy.incomplete_ms == most_ms
    assert policy.endpoint_ms <= most_ms  # a turn the model cannot judge ends sooner
