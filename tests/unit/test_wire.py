"""Decoding of client messages and settings: every malformed input has its own error code."""

from __future__ import annotations

import base64

import pytest

from domain.errors import AudioTooLarge, InvalidRequest, VoicePipeError
from entrypoints.settings import Settings, SettingsError
from entrypoints.v1.wire import (
    AudioMessage,
    InvalidBase64,
    InvalidJson,
    TextMessage,
    TtsBody,
    UnknownMessageType,
    decode_audio,
    decode_body,
    decode_message,
)


def test_text_and_audio_messages_decode() -> None:
    text = decode_message('{"type":"text","text":"hi","id":"1"}')
    assert text == TextMessage(text="hi", id="1")
    audio = decode_message(b'{"type":"audio","audio":"AAA=","language":"en"}')
    assert isinstance(audio, AudioMessage) and audio.language == "en"


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", InvalidJson),
        ("", InvalidJson),
        ("[]", UnknownMessageType),
        ('{"type": 5}', UnknownMessageType),
        ('{"type": "video"}', UnknownMessageType),
        ('{"type": "text"}', InvalidRequest),
        ('{"type": "text", "text": ["a"]}', InvalidRequest),
        ('{"type": "audio", "audio": null}', InvalidRequest),
    ],
)
def test_bad_frames_get_specific_errors(frame: str, error: type[VoicePipeError]) -> None:
    with pytest.raises(error):
        decode_message(frame)


def test_rest_body_errors() -> None:
    assert decode_body(b'{"text":"x","future_field":1}', TtsBody).text == "x"
    with pytest.raises(InvalidJson):
        decode_body(b"{", TtsBody)
    with pytest.raises(InvalidRequest):
        decode_body(b"   ", TtsBody)
    with pytest.raises(InvalidRequest):
        decode_body(b'{"text": "x", "use_cache": "yes"}', TtsBody)


def test_audio_base64_is_checked_and_bounded() -> None:
    assert decode_audio(base64.b64encode(b"abc").decode(), 10) == b"abc"
    with pytest.raises(InvalidBase64):
        decode_audio("abc$", 10)
    with pytest.raises(AudioTooLarge):
        decode_audio(base64.b64encode(b"x" * 100).decode(), 10)


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {"PORT": "9001", "TTS_PROVIDERS": "piper", "MAX_TEXT_CHARS": "10", "API_KEYS": "a, b"}
    )
    assert settings.port == 9001 and settings.max_text_chars == 10
    assert settings.api_keys == ("a", "b")
    assert Settings.from_env({}).max_audio_bytes == 25 * 1024 * 1024


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "eighty"},
        {"PORT": "70000"},
        {"MAX_TEXT_CHARS": "0"},
        {"TTS_PROVIDERS": "acme"},
        {"LOG_FORMAT": "xml"},
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert next(iter(env)) in str(raised.value)
