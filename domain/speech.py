"""Value objects of speech: requests, audio, transcripts, sentiment."""

from __future__ import annotations

import enum
import hashlib
import unicodedata

import msgspec

from domain.errors import EmptyText, InvalidAudio, InvalidRequest, TextTooLong, UnsupportedFormat


class AudioFormat(enum.Enum):
    """Output encodings the service can produce."""

    WAV = "wav"
    MP3 = "mp3"
    OPUS = "opus"
    FLAC = "flac"
    AAC = "aac"
    PCM = "pcm"

    @classmethod
    def parse(cls, value: str) -> AudioFormat:
        try:
            return cls(value.lower())
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise UnsupportedFormat(f"unsupported format {value!r}; use one of: {names}") from None


CONTAINER_MAGIC = {b"OggS": "ogg", b"\x1a\x45\xdf\xa3": "webm"}


def container_encoding(first: bytes) -> str:
    """The streaming container (Ogg or WebM) the first bytes of a stream open."""
    for magic, encoding in CONTAINER_MAGIC.items():
        if first.startswith(magic):
            return encoding
    raise InvalidAudio(
        "without an encoding the audio must be Ogg or WebM; for raw audio name its encoding "
        "and sample_rate"
    )


class Speed:
    """How fast speech is said: 1 is the voice's own pace; 0.25 to 4 (OpenAI's range)."""

    LOWEST, HIGHEST = 0.25, 4.0

    @classmethod
    def parse(cls, value: float) -> float:
        if not cls.LOWEST <= value <= cls.HIGHEST:  # also NaN
            raise InvalidRequest(
                f"speed must be between {cls.LOWEST} and {cls.HIGHEST}", param="speed"
            )
        return float(value)


class SampleRate:
    """The rate of raw audio a client sends: 8 to 48 kHz."""

    LOWEST, HIGHEST = 8_000, 48_000

    @classmethod
    def parse(cls, value: int) -> int:
        if not cls.LOWEST <= value <= cls.HIGHEST:
            raise InvalidRequest(
                f"sample_rate must be between {cls.LOWEST} and {cls.HIGHEST}", param="sample_rate"
            )
        return value


class Voice(msgspec.Struct, frozen=True):
    """A voice of one provider: the pair is what the cache and the events record."""

    provider: str
    name: str


class AudioClip(msgspec.Struct, frozen=True):
    """Mono 16-bit little-endian PCM at a sample rate."""

    pcm: bytes
    sample_rate: int

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.samples / self.sample_rate if self.sample_rate else 0.0


class ProcessingSettings(msgspec.Struct, frozen=True):
    """How synthesized audio is cleaned up; part of the cache key."""

    target_dbfs: float = -20.0
    compress: bool = True
    trim_silence: bool = True


class Segment(msgspec.Struct, frozen=True):
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float


class Word(msgspec.Struct, frozen=True):
    word: str
    start: float
    end: float
    probability: float


class Transcript(msgspec.Struct, frozen=True):
    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]
    words: tuple[Word, ...] = ()


class TranscriptionHints(msgspec.Struct, frozen=True):
    """What a caller may tell the model: context, sampling, and whether to time each word."""

    prompt: str | None = None
    temperature: float | None = None
    words: bool = False


class Sentiment(msgspec.Struct, frozen=True):
    polarity: float
    subjectivity: float
    label: str
    emotion: str
    keywords: tuple[str, ...]


_UNSPOKEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))  # controls, format, surrogates, unassigned
_MARKS = frozenset(("Mn", "Mc", "Me"))
MAX_MARKS = 2  # combining marks kept per letter: more is "zalgo" decoration, not speech


def normalize_text(text: str, max_chars: int) -> str:
    """Unicode NFC, whitespace collapsed, nothing unspeakable; raises on empty or over-long text.

    Dropped: control and format characters (NUL, zero-width, bidi marks, BOM), lone
    surrogates, unassigned code points, and combining marks past MAX_MARKS on one letter.
    """
    if len(text) > 2 * max_chars:  # refuse before any per-character work
        raise TextTooLong(f"text has {len(text)} characters; the limit is {max_chars}")
    kept: list[str] = []
    marks = 0
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char.isspace():
            char = " "
        elif category in _UNSPOKEN:
            continue
        marks = marks + 1 if category in _MARKS else 0
        if marks <= MAX_MARKS:
            kept.append(char)
    normalized = " ".join("".join(kept).split())
    if not normalized:
        raise EmptyText("text is empty")
    if len(normalized) > max_chars:
        raise TextTooLong(f"text has {len(normalized)} characters; the limit is {max_chars}")
    return normalized


def chars_allowed(max_chars: int, speed: float) -> int:
    """The most characters a text may have at `speed`: `max_chars` in proportion below 1."""
    if not speed > 0:  # also NaN
        raise InvalidRequest(f"speed must be positive, not {speed}")
    return int(round(max_chars * min(speed, 1.0), 6))  # 5000 * 0.29 is 1449.99…: 1450


def check_length_for_speed(text: str, speed: float, max_chars: int) -> None:
    """Bound the audio a text can make, not only its characters: at speed 0.25 a text makes
    four times the audio of speed 1, so it may be at most `max_chars * speed` characters.

    Faster speech does not raise the limit past `max_chars`. Raises TextTooLong naming both.
    """
    limit = chars_allowed(max_chars, speed)
    if len(text) > limit:
        raise TextTooLong(
            f"text has {len(text)} characters; at speed {speed:g} the limit is {limit} "
            f"({max_chars} at speed 1, in proportion below it)"
        )


class SpeechRequest(msgspec.Struct, frozen=True):
    """A validated text-to-speech request (text already normalized)."""

    text: str
    voice: Voice
    audio_format: AudioFormat
    processing: ProcessingSettings
    use_cache: bool = True
    speed: float = 1.0

    def cache_key(self) -> str:
        """Covers everything that changes the audio, never the text alone."""
        canonical = msgspec.json.encode(
            [
                self.text,
                self.voice.provider,
                self.voice.name,
                self.audio_format.value,
                self.processing,
                self.speed,
            ]
        )
        return "tts:" + hashlib.sha256(canonical).hexdigest()


class SpokenAudio(msgspec.Struct, frozen=True):
    """Encoded speech ready to send, with what is needed to describe it."""

    data: bytes
    audio_format: AudioFormat
    sample_rate: int
    duration_ms: float
    voice: Voice
    sentiment: Sentiment | None
