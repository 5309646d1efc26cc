"""SpeechStreams: one connection's streams of speech, by id; what a refused or racing stream
costs, how streams end, where their errors go."""

from __future__ import annotations

import asyncio

import pytest

from application.speech_streams import SpeechStreams
from application.stream_speech import StreamFinished, StreamItem
from domain.errors import InvalidRequest, VoicePipeError
from tests.unit.test_speaking import alice, charged, keyed_world


def streams_of(world: object) -> tuple[SpeechStreams, dict[str, list[object]]]:
    heard: dict[str, list[object]] = {}

    async def fail(stream_id: str, error: VoicePipeError) -> None:
        heard.setdefault(stream_id, []).append(error)

    streams = SpeechStreams(world.container.speaking, "test", fail)  # type: ignore[attr-defined]
    streams.principal = alice(world)  # type: ignore[arg-type]
    return streams, heard


def say_into(heard: dict[str, list[object]], stream_id: str):  # type: ignore[no-untyped-def]
    async def say(item: StreamItem) -> None:
        heard.setdefault(stream_id, []).append(item)

    return say


async def test_an_open_id_is_refused_before_anything_is_charged() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    streams, heard = streams_of(world)
    await streams.start("s", say_into(heard, "s"), pipeline_id="p1", text="Hello there.")
    with pytest.raises(InvalidRequest, match="already open"):
        await streams.start("s", say_into(heard, "s"), pipeline_id="p2", text="Another one.")
    await streams.done("s")
    assert await charged(world) == len("Hello there.")
    assert isinstance(heard["s"][-1], StreamFinished)
    assert not streams.busy


async def test_first_pieces_racing_for_one_id_open_it_once_and_charge_one() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    streams, heard = streams_of(world)
    say = say_into(heard, "s")
    results = await asyncio.gather(
        *(streams.write("s", f"Piece {n}. ", say, pipeline_id=f"p{n}") for n in range(5)),
        return_exceptions=True,
    )
    assert all(r is None or isinstance(r, InvalidRequest) for r in results)
    taken = [f"Piece {n}. " for n, r in enumerate(results) if r is None]
    streams.finish("s")
    await streams.done("s")
    finished = heard["s"][-1]
    assert isinstance(finished, StreamFinished)
    assert finished.text == "".join(taken).strip()  # one stream, with every piece it took
    assert await charged(world) == len("".join(taken))  # a refused piece costs nothing


async def test_a_failed_stream_tells_its_id_and_ends() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    world.synthesizer.fail = True
    streams, heard = streams_of(world)
    await streams.start("s", say_into(heard, "s"), pipeline_id="p1", text="Hello there.")
    await streams.done("s")
    assert [type(e).__name__ for e in heard["s"] if isinstance(e, VoicePipeError)]
    assert not streams.busy
    with pytest.raises(InvalidRequest, match="no stream"):
        streams.finish("s")


async def test_drain_finishes_every_stream_and_close_stops_them() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    streams, heard = streams_of(world)
    for name in ("a", "b"):
        await streams.write(name, f"Stream {name} speaks.", say_into(heard, name), pipeline_id=name)
    await streams.drain(5.0)
    assert all(isinstance(heard[name][-1], StreamFinished) for name in ("a", "b"))
    assert not streams.busy
    await streams.write("c", "More to say.", say_into(heard, "c"), pipeline_id="c")
    await streams.close()  # before its task ran: its session is still settled
    assert not streams.busy
    assert await charged(world) == len("Stream a speaks.") * 2  # nothing of c was spoken


async def test_open_streams_are_bounded_and_one_more_costs_nothing() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    streams, heard = streams_of(world)
    for n in range(16):
        await streams.write(f"s{n}", "a", say_into(heard, f"s{n}"), pipeline_id=f"p{n}")
    with pytest.raises(InvalidRequest, match="at most 16"):
        await streams.write("s16", "b", say_into(heard, "s16"), pipeline_id="p16")
    assert await charged(world) == 16  # the refused piece was never reserved
    streams.cancel("s0")
    await streams.done("s0")
    await streams.write("s16", "b", say_into(heard, "s16"), pipeline_id="p16")  # room again
    await streams.close()
    assert await charged(world) == 0  # nothing was spoken
