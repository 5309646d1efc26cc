"""semantic_vad maps to the turn model's endpointing; server_vad stays silence only."""

from __future__ import annotations

import pytest

from domain.utterances import Endpointing
from entrypoints import app  # noqa: F401  (the routers in their import order)
from entrypoints.realtime import session as realtime


def turn(detection: dict[str, object]) -> Endpointing:
    update = realtime.read(
        {"type": "realtime", "audio": {"input": {"turn_detection": detection}}}, beta=False
    )
    config = realtime.updated(realtime.new_session("s1", "realtime", None), update)
    assert config.turn_detection is not None
    return config.turn_detection.endpointing()


@pytest.mark.parametrize(
    ("eagerness", "threshold", "incomplete", "silence"),
    [
        ("low", 0.7, 8000, 1000),
        ("medium", 0.5, 4000, 500),
        ("auto", 0.5, 4000, 500),
        ("high", 0.3, 2000, 300),
    ],
)
def test_semantic_vad_asks_the_turn_model_with_the_eagerness_thresholds(
    eagerness: str, threshold: float, incomplete: int, silence: int
) -> None:
    policy = turn({"type": "semantic_vad", "eagerness": eagerness})
    assert policy.semantic
    assert (policy.complete_threshold, policy.incomplete_ms) == (threshold, incomplete)
    assert policy.endpoint_ms == silence  # what ends the turn when the model cannot say


def test_server_vad_ends_turns_on_silence_only() -> None:
    policy = turn({"type": "server_vad", "silence_duration_ms": 700})
    assert not policy.semantic and policy.endpoint_ms == 700
