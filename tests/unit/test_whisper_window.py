"""The encoder's input past the audio is the log-mel of silence, as Whisper was trained on,
not faster-whisper's zeros."""

from __future__ import annotations

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

from adapters.faster_whisper_transcriber import _content_frames, silence_filled


def _speech_like(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def test_the_fill_is_what_digital_silence_after_the_audio_would_give() -> None:
    extractor = FeatureExtractor()
    audio = _speech_like(2.0)
    with_silence = extractor(np.concatenate([audio, np.zeros(48_000, np.float32)]))
    alone = extractor(audio)
    content = _content_frames(np.pad(alone, ((0, 0), (0, 3000 - alone.shape[-1]))))
    assert content == alone.shape[-1]
    window = np.zeros((80, 3000), np.float32)
    window[:, :content] = alone
    filled = silence_filled(window, content)
    assert np.array_equal(filled[:, :content], alone)  # the audio itself is untouched
    silent = with_silence[:, content + 5 : with_silence.shape[-1] - 5]  # clear of the edges
    assert np.allclose(filled[:, content + 5 : content + 5 + silent.shape[-1]], silent)
    assert not np.allclose(window[:, content + 5 :], silent.mean())  # zeros were not silence


def test_a_window_the_audio_fills_or_an_empty_one_is_left_alone() -> None:
    full = np.random.default_rng(1).uniform(-1, 1, (80, 3000)).astype(np.float32)
    assert silence_filled(full, 3000) is full
    empty = np.zeros((80, 3000), np.float32)
    assert silence_filled(empty, 0) is empty
