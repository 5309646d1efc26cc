"""Deepgram's query parameters: what is taken, what is refused by name."""

from __future__ import annotations

import pytest

from entrypoints.deepgram import options
from entrypoints.deepgram.query import InvalidParameter, Query, UnsupportedFeature

MODELS = options.Models("tiny.en", ("tiny.en", "base", "medical"))


def query(text: str) -> Query:
    pairs = [tuple(part.split("=", 1)) for part in text.split("&") if part]
    return Query((name, value) for name, value in pairs)


def live(text: str) -> options.Live:
    return options.live(query(text), MODELS, 500)


def test_prerecorded_defaults_are_deepgrams() -> None:
    asked = options.prerecorded(query(""), MODELS)
    assert asked.common == options.Common(None, "tiny.en", "en", False, None)
    assert asked.encoding is None and asked.channels == 1
    assert not asked.utterances and asked.utt_split == 0.8 and not asked.detect_language


@pytest.mark.parametrize(
    ("text", "model", "name"),
    [
        ("model=nova-3", None, "tiny.en"),
        ("model=nova-2-phonecall", None, "tiny.en"),
        ("model=enhanced", None, "tiny.en"),
        ("model=whisper-large", None, "tiny.en"),
        ("model=whisper-1", None, "tiny.en"),
        ("model=tiny.en", None, "tiny.en"),
        ("model=base", "base", "base"),  # a configured name wins over Deepgram's `base`
        ("model=medical", "medical", "medical"),
    ],
)
def test_models_are_configured_names_or_deepgrams(text: str, model: str | None, name: str) -> None:
    common = options.prerecorded(query(text), MODELS).common
    assert (common.model, common.model_name) == (model, name)


def test_unknown_models_are_refused_by_name() -> None:
    with pytest.raises(InvalidParameter) as refused:
        options.prerecorded(query("model=../../etc"), MODELS)
    assert refused.value.param == "model" and "tiny.en, base, medical" in refused.value.message


@pytest.mark.parametrize(
    ("text", "language"),
    [("language=en-US", "en"), ("language=fr", "fr"), ("language=pt_BR", "pt"),
     ("language=multi", None), ("detect_language=true&language=fr", None)],
)  # fmt: skip
def test_languages_are_whisper_codes(text: str, language: str | None) -> None:
    assert options.prerecorded(query(text), MODELS).common.language == language


@pytest.mark.parametrize(
    "text",
    ["diarize=true", "multichannel=true", "paragraphs=true", "summarize=v2", "topics=true",
     "redact=pci", "search=hello", "replace=a:b", "callback=http://x/", "diarize_model=v1",
     "profanity_filter=true", "filler_words=true"],
)  # fmt: skip
def test_features_it_does_not_have_are_refused_by_name(text: str) -> None:
    name = text.split("=")[0]
    for parse in (lambda: options.prerecorded(query(text), MODELS), lambda: live(text)):
        with pytest.raises(UnsupportedFeature) as refused:
            parse()
        assert refused.value.param == name and name in refused.value.message


def test_false_flags_and_unknown_parameters_are_accepted() -> None:
    asked = options.prerecorded(
        query("diarize=false&summarize=false&tag=a&mip_opt_out=true&no_such=1&numerals=true"),
        MODELS,
    )
    assert asked.common.model is None


@pytest.mark.parametrize(
    ("text", "param"),
    [("punctuate=yes", "punctuate"), ("utterances=1", "utterances"), ("utt_split=0", "utt_split"),
     ("utt_split=nan", "utt_split"), ("encoding=linear16", "sample_rate"),
     ("encoding=mulaw&sample_rate=abc", "sample_rate"), ("encoding=pcm", "encoding"),
     ("channels=9&encoding=linear16&sample_rate=8000", "channels"), ("language=e", "language")],
)  # fmt: skip
def test_bad_values_name_their_parameter(text: str, param: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        options.prerecorded(query(text), MODELS)
    assert refused.value.param == param and param in refused.value.message


def test_raw_encodings_take_their_rate_and_channels() -> None:
    asked = options.prerecorded(query("encoding=mulaw&sample_rate=16000&channels=2"), MODELS)
    assert (asked.encoding, asked.sample_rate, asked.channels) == ("pcmu", 16_000, 2)
    container = options.prerecorded(query("encoding=opus&sample_rate=48000"), MODELS)
    assert container.encoding is None  # a container says what it holds


def test_keyterms_and_keywords_are_the_models_context() -> None:
    asked = options.prerecorded(
        query("keyterm=Voicepipe&keyterm=Piper&keywords=Whisper:2&keywords=Piper"), MODELS
    )
    assert asked.common.prompt == "Voicepipe, Piper, Whisper"
    with pytest.raises(InvalidParameter):
        options.prerecorded(query("keyterm=" + "x" * 1001), MODELS)


def test_live_settings() -> None:
    asked = live(
        "encoding=linear16&sample_rate=48000&interim_results=true&endpointing=300"
        "&utterance_end_ms=1000&vad_events=true&punctuate=true"
    )
    assert (asked.encoding, asked.sample_rate) == ("pcm_s16le", 48_000)
    assert asked.interim_results and asked.vad_events and asked.common.punctuate
    assert (asked.endpoint_ms, asked.utterance_end_ms) == (300, 1000)
    assert live("encoding=mulaw").encoding == "pcmu" and live("encoding=alaw").sample_rate == 8000
    assert live("encoding=opus").encoding == live("encoding=ogg-opus").encoding == "ogg"
    assert live("").encoding is None  # told by the first bytes
    assert live("endpointing=false").endpoint_ms is None
    assert live("endpointing=true").endpoint_ms == live("").endpoint_ms == 500
    assert live("endpointing=10").endpoint_ms == 100  # Deepgram's default: the lowest we take
    assert live("endpointing=60000").endpoint_ms == 5000


@pytest.mark.parametrize(
    ("text", "param"),
    [("channels=2", "channels"), ("encoding=mulaw&sample_rate=16000", "sample_rate"),
     ("encoding=flac", "encoding"), ("encoding=linear16", "sample_rate"),
     ("encoding=linear16&sample_rate=96000", "sample_rate"), ("endpointing=-5", "endpointing"),
     ("endpointing=later", "endpointing"), ("utterance_end_ms=99", "utterance_end_ms"),
     ("model=large-v3", "model")],
)  # fmt: skip
def test_live_refusals_name_their_parameter(text: str, param: str) -> None:
    with pytest.raises((InvalidParameter, UnsupportedFeature)) as refused:
        live(text)
    assert getattr(refused.value, "param", None) == param and param in refused.value.message


def test_streams_take_a_configured_model_and_detect_the_language_when_asked() -> None:
    """Which model speaks which language is application/model_choice's: checked at open."""
    assert live("model=base&language=es").common == options.Common(
        "base", "base", "es", False, None
    )
    assert live("language=multi").common.language is None
    assert live("detect_language=true&language=es").common.language is None
    assert live("").common.language == "en"  # Deepgram's default
