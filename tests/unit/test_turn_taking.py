"""semantic_vad's eagerness, as OpenAI documents it: the longest an unfinished turn waits."""

from __future__ import annotations

import pytest

from domain.errors import InvalidValue
from domain.turn_taking import Eagerness, TurnDetection, TurnThresholds
from domain.utterances import Endpointing


@pytest.mark.parametrize(
    ("eagerness", "most_ms"), [("low", 8000), ("medium", 4000), ("auto", 4000), ("high", 2000)]
)
def test_eagerness_bounds_the_wait_of_an_unfinished_turn(
    eagerness: Eagerness, most_ms: int
) -> None:
    policy = TurnDetection().semantic(eagerness).endpointing()
    assert policy.semantic and policy.incomplete_ms == most_ms
    assert policy.endpoint_ms <= most_ms  # a turn the model cannot judge ends sooner


def test_flux_thresholds_map_to_the_turn_model_and_refuse_values_out_of_range() -> None:
    thresholds = TurnThresholds().updated(eager_eot_threshold=0.4, eot_timeout_ms=3000.0)
    policy = thresholds.endpointing(Endpointing(endpoint_ms=500), judged=True)
    assert (policy.complete_threshold, policy.eager_threshold) == (0.7, 0.4)
    assert policy.semantic and policy.incomplete_ms == policy.endpoint_ms == 3000
    unjudged = thresholds.endpointing(Endpointing(endpoint_ms=500), judged=False)
    assert unjudged.endpoint_ms == 500  # no turn model: silence, no longer than the timeout
    assert thresholds.updated(eot_threshold=None) == thresholds  # None keeps the value
    for bad in (
        {"eot_threshold": 1.01},
        {"eot_threshold": float("nan")},
        {"eager_eot_threshold": 0.2},
        {"eager_eot_threshold": 0.8},  # above eot_threshold
        {"eot_timeout_ms": 499.0},
        {"eot_timeout_ms": 1000.5},
    ):
        with pytest.raises(InvalidValue):
            thresholds.updated(**bad)
