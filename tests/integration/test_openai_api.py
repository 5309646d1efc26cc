"""The official OpenAI client against the running service: speech, transcriptions, models."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import av
import openai
import pytest
import srt
import webvtt

from tests.integration.conftest import RunningServer
from tests.integration.speech import SENTENCES, heard


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="unused", base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def spoken(client: openai.OpenAI) -> bytes:
    return client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCES[0], response_format="wav"
    ).content


def seconds_of(data: bytes) -> float:
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        return sum(int(f.samples) for f in container.decode(stream)) / float(stream.rate or 1)


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav"])
def test_speech_in_every_container_format(client: openai.OpenAI, response_format: str) -> None:
    audio = client.audio.speech.create(
        model="tts-1",
        voice="nova",
        input="Hello from an OpenAI client.",
        response_format=response_format,  # type: ignore[arg-type]
    ).content
    assert 1.0 < seconds_of(audio) < 4.0


def test_speech_pcm_is_24khz_raw(client: openai.OpenAI) -> None:
    pcm = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Raw samples please.", response_format="pcm"
    ).content
    assert 0.8 < len(pcm) / 2 / 24_000 < 3.0


def test_unknown_voice_is_an_openai_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="tts-1", voice="nobody", input="hi")
    body = raised.value.body
    assert isinstance(body, dict) and body["param"] == "voice" and body["code"] == "invalid_value"


def test_empty_input_is_an_openai_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="tts-1", voice="alloy", input="   ")
    assert "empty" in str(raised.value)


def test_transcription_json_text_and_verbose(client: openai.OpenAI, spoken: bytes) -> None:
    as_json = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", spoken))
    assert heard(SENTENCES[0], as_json.text)
    as_text = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", spoken), response_format="text"
    )
    assert heard(SENTENCES[0], str(as_text))
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", spoken),
        response_format="verbose_json",
        timestamp_granularities=["segment"],
    )
    assert verbose.language == "english" and verbose.duration > 1.0
    assert verbose.segments and verbose.segments[0].end > verbose.segments[0].start


def test_transcription_subtitles_parse(client: openai.OpenAI, spoken: bytes) -> None:
    as_srt = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", spoken), response_format="srt"
    )
    subtitles = list(srt.parse(str(as_srt)))
    assert subtitles and subtitles[0].end > subtitles[0].start
    assert heard(SENTENCES[0], " ".join(s.content for s in subtitles))
    as_vtt = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", spoken), response_format="vtt"
    )
    captions = webvtt.from_buffer(io.StringIO(str(as_vtt)))
    assert captions and captions[0].end_in_seconds > captions[0].start_in_seconds


def test_bad_audio_is_an_openai_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"not audio" * 50))
    body = raised.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_audio"


def test_models_are_listed(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"tiny.en", "piper", "whisper-1", "tts-1"} <= ids


def test_silence_transcribes_to_nothing(client: openai.OpenAI) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 32000)
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("s.wav", buffer.getvalue())
    )
    assert result.text == ""


def test_speed_changes_the_duration(client: openai.OpenAI) -> None:
    text = "Speed changes how long this sentence takes to say."
    normal = client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="mp3"
    )
    fast = client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="mp3", speed=2.0
    )
    # Piper at speed 2 says it in 0.6-0.75 of the time (its pauses and noise vary); a speed
    # left unapplied gives 0.95-1.05.
    assert seconds_of(fast.content) < 0.85 * seconds_of(normal.content)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input=text, speed=9.0)


@pytest.mark.parametrize("response_format", ["wav", "mp3", "aac", "opus"])
def test_speech_streams_before_it_is_all_synthesized(
    server: RunningServer, response_format: str
) -> None:
    import httpx

    text = " ".join(f"This is sentence number {i} of the stream." for i in range(8))
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": response_format}
    with httpx.stream("POST", f"{server.url}/v1/audio/speech", json=body, timeout=60) as response:
        assert response.status_code == 200 and "content-length" not in response.headers
        parts = list(response.iter_raw())
    assert len(parts) > 3  # sent piece by piece, as each sentence was synthesized
    if response_format == "wav":
        assert sum(len(p) for p in parts) > 44 + 22050 * 2 * 5
    else:
        assert seconds_of(b"".join(parts)) > 8.0  # the pieces play back as one file


def test_transcription_streams_server_sent_events(client: openai.OpenAI, spoken: bytes) -> None:
    events = list(
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", spoken), stream=True)
    )
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = [e for e in events if e.type == "transcript.text.done"]
    assert deltas and len(done) == 1 and events[-1].type == "transcript.text.done"
    assert "".join(deltas) == done[0].text
    assert heard(SENTENCES[0], done[0].text)


def test_word_timestamps_prompt_and_temperature(client: openai.OpenAI, spoken: bytes) -> None:
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", spoken),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        prompt="A sentence about a fox and a dog.",
        temperature=0.0,
    )
    words = verbose.words or []
    assert len(words) >= 6
    assert all(w.end >= w.start for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert heard(SENTENCES[0], " ".join(w.word for w in words))
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", spoken), temperature=3)
