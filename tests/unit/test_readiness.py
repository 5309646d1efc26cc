"""The readiness verdict: which queue loads and states make an instance not ready."""

from __future__ import annotations

from domain.readiness import QueueLoad, readiness


def loads(stt: int, tts: int) -> list[QueueLoad]:
    return [QueueLoad("stt tiny.en", stt, 16), QueueLoad("tts piper", tts, 64)]


def test_an_idle_instance_is_ready() -> None:
    verdict = readiness(loads(0, 0), saturated_at=0.75, draining=False)
    assert verdict.ready and verdict.reasons == ()


def test_a_queue_at_the_mark_makes_it_not_ready_and_says_which() -> None:
    assert readiness(loads(11, 47), saturated_at=0.75, draining=False).ready
    stt_full = readiness(loads(12, 0), saturated_at=0.75, draining=False)
    assert not stt_full.ready and stt_full.reasons == ("stt tiny.en queue saturated: 12/16",)
    tts_full = readiness(loads(0, 48), saturated_at=0.75, draining=False)
    assert not tts_full.ready and "tts piper" in tts_full.reasons[0]


def test_ready_again_once_the_queue_drains_below_the_mark() -> None:
    assert not readiness(loads(16, 0), saturated_at=0.75, draining=False).ready
    assert readiness(loads(11, 0), saturated_at=0.75, draining=False).ready


def test_draining_is_never_ready_even_when_idle() -> None:
    verdict = readiness(loads(0, 0), saturated_at=1.0, draining=True)
    assert not verdict.ready and verdict.reasons[0].startswith("draining")


def test_a_tiny_queue_needs_at_least_one_job_to_saturate() -> None:
    assert readiness([QueueLoad("stt", 0, 1)], saturated_at=0.1, draining=False).ready
    assert not readiness([QueueLoad("stt", 1, 1)], saturated_at=0.1, draining=False).ready
    assert readiness([QueueLoad("none", 5, 0)], saturated_at=0.5, draining=False).ready
