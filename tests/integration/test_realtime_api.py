"""OpenAI's Realtime API, driven end to end by the official `openai` SDK's realtime client
against a real server on loopback (a fake chat-completions server stands in for the LLM)."""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from adapters.g711 import encode as g711_encode
from adapters.pyav_audio_streams import PyAVAudioConverter
from domain.events import LanguageModelReplied, ReplyInterrupted, VoiceReplied
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_llm import FakeLLM
from tests.integration.speech import piper_clip, wer

QUESTION = "What is the weather like in Paris today?"
ANSWER = "It is sunny in Paris. The temperature is twenty degrees. Enjoy your day outside."


@functools.cache
def speech_pcm(text: str, rate: int = 24_000) -> bytes:
    clip = piper_clip(text)
    return PyAVAudioConverter().resample(clip.pcm, clip.sample_rate, rate)


def silence(ms: int, rate: int = 24_000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(ANSWER) as fake:
        yield fake


@pytest.fixture(scope="module")
def agent(container: Container, llm: FakeLLM) -> Iterator[RunningServer]:
    """The service with a chat model, sharing the session's loaded models."""
    settings = Settings(llm_base_url=llm.url, llm_model="fake-model")
    with RunningServer(sharing_models(container, settings)) as running:
        yield running


def client(server: RunningServer, key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.url + "/v1", api_key=key)


async def append(connection: Any, pcm: bytes, chunk: int = 4800) -> None:
    for at in range(0, len(pcm), chunk):
        audio = base64.b64encode(pcm[at : at + chunk]).decode()
        await connection.input_audio_buffer.append(audio=audio)


async def until(connection: Any, kind: str, seen: list[Any], wait: float = 60) -> Any:
    """Events up to and including the first of `kind`, added to `seen`."""
    async with asyncio.timeout(wait):
        async for event in connection:
            seen.append(event)
            if event.type == kind:
                return event
    raise AssertionError(f"the connection closed before {kind}")


def types(seen: list[Any]) -> list[str]:
    return [event.type for event in seen]


async def test_a_transcription_session_transcribes_each_turn_with_server_vad(
    server: RunningServer,
) -> None:
    sdk = client(server)
    async with sdk.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        seen: list[Any] = []
        created = await until(connection, "session.created", seen)
        assert created.session.type == "transcription"
        await connection.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1", "language": "en"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
        )
        updated = await until(connection, "session.updated", seen)
        assert updated.session.audio.input.turn_detection.silence_duration_ms == 500
        first, second = "Please call me back tomorrow morning.", "The quick brown fox jumps."
        await append(connection, silence(300) + speech_pcm(first) + silence(900))
        await append(connection, speech_pcm(second) + silence(900))
        completed: list[Any] = []
        while len(completed) < 2:
            completed.append(
                await until(
                    connection, "conversation.item.input_audio_transcription.completed", seen
                )
            )
    order = types(seen)
    for kind in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
    ):
        assert order.count(kind) == 2, kind
    assert "response.created" not in order  # transcription sessions never answer
    assert wer(first, completed[0].transcript) <= 0.2
    assert wer(second, completed[1].transcript) <= 0.2
    committed = [e.item_id for e in seen if e.type == "input_audio_buffer.committed"]
    assert [c.item_id for c in completed] == committed
    started = [e for e in seen if e.type == "input_audio_buffer.speech_started"]
    assert 0 < started[0].audio_start_ms < 400  # 300 ms of silence, then speech


async def test_semantic_vad_ends_a_finished_sentence_before_the_silence_would(
    server: RunningServer,
) -> None:
    """eagerness low: 1 s of silence ends a turn, unless the turn model hears a finished
    sentence. Only 900 ms of silence follow it here (in real time, as a microphone sends)."""
    text = "Please turn off the lights in the kitchen."
    sdk = client(server)
    async with sdk.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        seen: list[Any] = []
        await connection.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                    }
                },
            }
        )
        updated = await until(connection, "session.updated", seen)
        assert updated.session.audio.input.turn_detection.eagerness == "low"
        await append(connection, silence(300) + speech_pcm(text))
        for _ in range(9):  # 100 ms of silence every 100 ms
            await append(connection, silence(100))
            await asyncio.sleep(0.1)
        done = await until(
            connection, "conversation.item.input_audio_transcription.completed", seen
        )
    assert wer(text, done.transcript) <= 0.2
    stopped = next(e for e in seen if e.type == "input_audio_buffer.speech_stopped")
    speech_end_ms = 300 + len(speech_pcm(text)) // 48
    assert stopped.audio_end_ms < speech_end_ms + 900


@pytest.mark.parametrize("law", ["pcmu", "pcma"])
async def test_telephony_audio_in_g711_with_manual_commits(server: RunningServer, law: str) -> None:
    sdk = client(server)
    text = "Please call me back tomorrow morning at the office."
    audio = g711_encode(law, speech_pcm(text, 8_000))
    async with sdk.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        seen: list[Any] = []
        await connection.session.update(
            session={  # type: ignore[arg-type,misc]
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": f"audio/{law}"},
                        "turn_detection": None,
                        "transcription": {"prompt": "A message left on an answering machine."},
                    }
                },
            }
        )
        await until(connection, "session.updated", seen)
        await append(connection, audio, chunk=1600)
        await connection.input_audio_buffer.commit()
        done = await until(
            connection, "conversation.item.input_audio_transcription.completed", seen
        )
        await connection.input_audio_buffer.commit()  # nothing since: a clear error
        error = await until(connection, "error", seen)
    assert wer(text, done.transcript) <= 0.2
    assert "input_audio_buffer.speech_started" not in types(seen)  # manual: no VAD events
    assert "input_audio_buffer.committed" in types(seen)
    assert error.error.code == "invalid_request" and "empty" in error.error.message


async def test_a_conversation_answers_a_spoken_turn_in_speech(
    agent: RunningServer, llm: FakeLLM
) -> None:
    sdk = client(agent)
    async with sdk.realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "You are a weather assistant.",
                "audio": {"output": {"voice": "alloy"}},
            }
        )
        await until(connection, "session.updated", seen)
        await append(connection, silence(300) + speech_pcm(QUESTION) + silence(900))
        done = await until(connection, "response.done", seen)
    order = types(seen)
    assert order.index("conversation.item.input_audio_transcription.completed") < order.index(
        "response.created"
    )
    assert done.response.status == "completed"
    heard = next(e for e in seen if e.type.endswith("input_audio_transcription.completed"))
    assert wer(QUESTION, heard.transcript) <= 0.2
    asked = llm.requests[-1]["messages"]
    assert asked[0] == {"role": "system", "content": "You are a weather assistant."}
    assert asked[-1] == {"role": "user", "content": heard.transcript}
    transcript = "".join(
        e.delta for e in seen if e.type == "response.output_audio_transcript.delta"
    )
    assert transcript == ANSWER
    audio = b"".join(
        base64.b64decode(e.delta) for e in seen if e.type == "response.output_audio.delta"
    )
    seconds = len(audio) / 48_000
    assert 3 < seconds < 15  # 24 kHz s16le speech of the three sentences
    item = done.response.output[0]
    assert item.role == "assistant" and item.content[0].transcript == ANSWER
    spoken_back = await asyncio.to_thread(_transcribe_pcm24, agent, audio)
    assert wer(ANSWER, spoken_back) <= 0.25


def _transcribe_pcm24(server: RunningServer, pcm: bytes) -> str:
    import httpx

    from adapters.pyav_codec import PyAVAudioCodec
    from domain.speech import AudioClip, AudioFormat
    from tests.integration.speech import run_sync

    wav = run_sync(PyAVAudioCodec().encode(AudioClip(pcm, 24_000), AudioFormat.WAV))
    with httpx.Client(base_url=server.url, timeout=60) as http:
        answer = http.post("/api/stt", files={"file": ("a.wav", wav, "audio/wav")})
    return str(answer.json()["text"])


async def test_text_turns_and_text_only_answers(agent: RunningServer, llm: FakeLLM) -> None:
    sdk = client(agent)
    async with sdk.realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await until(connection, "session.updated", seen)
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello there, what can you do?"}],
            }
        )
        added = await until(connection, "conversation.item.added", seen)
        await connection.response.create(response={"instructions": "Answer briefly."})
        done = await until(connection, "response.done", seen)
        text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
        assert text == ANSWER and done.response.output[0].content[0].text == ANSWER
        assert not any(e.type == "response.output_audio.delta" for e in seen)
        assert llm.requests[-1]["messages"] == [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hello there, what can you do?"},
        ]
        # The answer is in the conversation: the next turn carries it.
        await connection.conversation.item.delete(item_id=added.item.id)
        await until(connection, "conversation.item.deleted", seen)
        await connection.response.create()
        await until(connection, "response.done", seen)
        assert [m["role"] for m in llm.requests[-1]["messages"]] == ["assistant"]


async def test_barge_in_stops_the_answer_and_truncates_it_to_what_was_sent(
    agent: RunningServer, llm: FakeLLM
) -> None:
    sdk = client(agent)
    llm.answer = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 13))
    try:
        async with sdk.realtime.connect(model="gpt-realtime") as connection:
            seen: list[Any] = []
            await connection.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Tell me a long story."}],
                }
            )
            await connection.response.create()
            await until(connection, "response.output_audio.delta", seen)
            await asyncio.sleep(1.5)  # the answer plays for a while...
            await append(connection, speech_pcm("Stop, stop, wait a moment please."))
            started = await until(connection, "input_audio_buffer.speech_started", seen)
            done = await until(connection, "response.done", seen)
            after = seen.index(started)
            late = [e for e in seen[after:] if e.type == "response.output_audio.delta"]
            assert len(late) <= 2  # at most what was already on its way
            assert done.response.status == "cancelled"
            assert done.response.status_details.reason == "turn_detected"
            item = done.response.output[0]
            assert item.status == "incomplete"
            sent = b"".join(
                base64.b64decode(e.delta) for e in seen if e.type == "response.output_audio.delta"
            )
            assert len(sent) / 48_000 < 6  # paced: nowhere near the whole answer went out
            heard = item.content[0].transcript
            assert heard and llm.answer.startswith(heard.split(" sentence number 2")[0])
            assert len(heard) < len(llm.answer) / 2
            await connection.conversation.item.truncate(
                item_id=item.id, content_index=0, audio_end_ms=100
            )
            truncated = await until(connection, "conversation.item.truncated", seen)
            assert truncated.audio_end_ms == 100
            await append(connection, silence(900))
            await until(connection, "response.done", seen)  # the interruption is answered
            history = llm.requests[-1]["messages"]
            assert history[1] == {
                "role": "assistant",
                "content": "This is sentence number 1 of a long answer.",
            }
    finally:
        llm.answer = ANSWER
    await asyncio.sleep(0.5)  # the answers' events are appended as they wind down
    events = [event for _, event in await agent.container.event_log.read(None, 100_000)]
    replied = [e for e in events if isinstance(e, LanguageModelReplied)]
    # The fake model streams its whole answer at once: it was done before the user spoke.
    assert len(replied) >= 2 and {e.status for e in replied} == {"completed"}
    assert all(e.model == "fake-model" for e in replied)
    interrupted = [e for e in events if isinstance(e, ReplyInterrupted)]
    assert interrupted and 0 < interrupted[-1].audio_ms < 6000
    voiced = [e for e in events if isinstance(e, VoiceReplied)]
    assert voiced and all(0 < e.voice_to_voice_ms < 10_000 for e in voiced)


async def test_without_a_chat_model_a_conversation_says_which_setting_is_missing(
    server: RunningServer,
) -> None:
    sdk = client(server)
    async with sdk.realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await until(connection, "session.created", seen)
        error = await until(connection, "error", seen)
        assert error.error.code == "llm_not_configured" and "LLM_BASE_URL" in error.error.message
        await connection.response.create()
        again = await until(connection, "error", seen)
        assert again.error.code == "llm_not_configured"
