"""Use case: who is calling (application.keys) and what they may still do: quotas, limits.

Rules:
- With no keys configured the service is open (local use) and nothing is limited per key.
- Anonymous clients (with keys configured, only Wyoming's: its protocol has no
  authentication) live together under one key's limits, in buckets named "anonymous", as
  ANONYMOUS_LIMITS says: `auto` when keys are configured, `on` always, `off` never.
- Per key: requests in any 60 s, TTS characters per UTC day, STT audio seconds per UTC day,
  chat-model characters per UTC day, open WebSocket connections. Exceeding one is
  `rate_limited` with the seconds to wait.
- A cost known before the work (TTS text, decoded audio) is reserved atomically, then settled
  (the unused part refunded); one known only after (a chat model's answer) is checked before
  and added after.
- A limit of 0 never refuses, but what is used is still counted (usage shows it).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec

from application.allowance import Allowance
from application.keys import ANONYMOUS as ANONYMOUS
from application.keys import REALTIME as REALTIME
from application.keys import SCOPES as SCOPES
from application.keys import SOCKET as SOCKET
from application.keys import Credential as Credential
from application.keys import InvalidToken as InvalidToken
from application.keys import KeyRing as KeyRing
from application.keys import Principal as Principal
from application.keys import Tokens
from application.keys import Unauthorized as Unauthorized
from application.ports import Clock, LimitStore
from domain.errors import VoicePipeError

MINUTE, DAY = 60, 86_400
CONNECTION_TTL = 120.0  # a connection refreshes its slot every minute; a crashed one expires
UNBOUNDED = 2**31 - 1  # the limit a counter of limit 0 is kept under: counted, never refused
ANONYMOUS_LIMITS = ("auto", "on", "off")
TTS_CHARS, STT_SECONDS, LLM_CHARS = "tts_chars", "stt_seconds", "llm_chars"  # daily buckets
_LABELS = {
    TTS_CHARS: "TTS characters a day",
    STT_SECONDS: "STT audio seconds a day",
    LLM_CHARS: "chat-model characters a day",
}


class Limits(msgspec.Struct, frozen=True):
    """Per-key limits; 0 means no limit."""

    requests_per_minute: int = 600
    tts_chars_per_day: int = 1_000_000
    stt_seconds_per_day: int = 36_000
    connections_per_key: int = 10
    llm_chars_per_day: int = 1_000_000  # what the chat model answers in conversations


class Meter(msgspec.Struct, frozen=True):
    """One limit as its key sees it; `limit` and `left` are None where nothing is limited."""

    used: float
    limit: int | None
    left: float | None


class RateMeter(Meter, frozen=True):
    window_seconds: int  # `used` counts the requests of the last `window_seconds`


class Usage(msgspec.Struct, frozen=True):
    """What a key has used of each of its limits: the counts the limits are enforced on."""

    key_id: str
    name: str
    day: str  # the UTC day the daily quotas count, ISO 8601
    resets_in_seconds: int  # until the daily quotas start again
    requests: RateMeter
    tts_characters: Meter
    stt_seconds: Meter
    llm_characters: Meter
    connections: Meter


class RateLimited(VoicePipeError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after + 0.999))


class Access:
    def __init__(
        self,
        keys: KeyRing,
        store: LimitStore,
        clock: Clock,
        *,
        limits: Limits | None = None,
        token_ttl: int = 60,
        anonymous_limits: str = "auto",
    ) -> None:
        if anonymous_limits not in ANONYMOUS_LIMITS:
            raise ValueError(f"anonymous_limits is one of {ANONYMOUS_LIMITS}")
        self.keys = keys
        self.store = store
        self.clock = clock
        self.limits = limits or Limits()
        self.token_ttl = token_ttl
        self.anonymous_limits = anonymous_limits
        self.tokens = Tokens(keys, store, clock, token_ttl)

    @property
    def open(self) -> bool:
        return self.keys.open

    def limited(self, principal: Principal) -> bool:
        """Whether `principal` is counted and limited: every key; the anonymous clients (all
        together) with keys configured (`auto`), always (`on`) or never (`off`)."""
        if principal != ANONYMOUS:
            return True
        if self.anonymous_limits == "auto":
            return not self.keys.open
        return self.anonymous_limits == "on"

    def authenticate(self, presented: str | None) -> Principal:
        if self.keys.open:
            return ANONYMOUS
        if not presented:
            raise Unauthorized(
                "an API key is required: `Authorization: Bearer <key>` or `X-API-Key`"
            )
        principal = self.keys.identify(presented)
        if principal is None:
            raise Unauthorized("the API key is not valid")
        return principal

    async def identify(self, credential: Credential, *, realtime: bool = False) -> Principal:
        """Who presented `credential`, checked once for every transport.

        Open: anonymous. Else the key, else the token (scope `socket`), else the client secret
        (only where `realtime`: a secret opens /v1/realtime only); /v1/realtime (`realtime`)
        accepts both scopes, from either field. Nothing presented: Unauthorized.
        """
        if self.keys.open:
            return ANONYMOUS
        if credential.key is not None:
            return self.authenticate(credential.key)
        scopes = SCOPES if realtime else (SOCKET,)
        if credential.token is not None:
            return await self.tokens.redeem(credential.token, scopes)
        if credential.secret is not None:
            if not realtime:
                raise InvalidToken("a client secret (ek_…) opens /v1/realtime only")
            return await self.tokens.redeem(credential.secret, scopes)
        return self.authenticate(None)

    def issue_token(
        self, principal: Principal, ttl: int | None = None, *, scope: str = SOCKET
    ) -> str:
        return self.tokens.issue(principal, ttl, scope=scope)

    async def redeem(self, token: str, scope: str | tuple[str, ...]) -> Principal:
        return await self.tokens.redeem(token, scope)

    async def admit_request(self, principal: Principal) -> None:
        """Requests a minute hold over any 60 s, not per clock minute (no boundary bursts)."""
        if not self.limited(principal):
            return
        limit = self.limits.requests_per_minute
        bucket = f"{principal.key_id}:requests"
        wait = await self.store.hit(bucket, limit or UNBOUNDED, MINUTE, self.clock.now())
        if wait:
            message = f"the limit of {limit} requests a minute is reached {_for(principal)}"
            raise RateLimited(message, wait)

    async def reserve_text(self, principal: Principal, chars: int) -> float:
        """Atomically take `chars` of today's TTS quota (nothing when refused); the time the
        charge counts against, for `refund_text`."""
        return await self._reserve(principal, TTS_CHARS, chars, "this request alone")

    async def refund_text(self, principal: Principal, chars: int, at: float) -> None:
        """Give back characters reserved at `at` that were not spoken."""
        await self._refund(principal, TTS_CHARS, chars, at)

    async def charge_text(self, principal: Principal, chars: int) -> None:
        """Reserve `chars` for good: the text will be spoken in full."""
        await self.reserve_text(principal, chars)

    async def check_llm(self, principal: Principal) -> None:
        """Refuse before asking the chat model when today's chat characters are spent."""
        await self._check(principal, LLM_CHARS)

    async def add_llm(self, principal: Principal, chars: int) -> None:
        """Count what the chat model answered, unconditionally (known only afterwards)."""
        if self.limited(principal) and chars > 0:
            await self.store.add(f"{principal.key_id}:{LLM_CHARS}", chars, DAY, self.clock.now())

    async def check_audio(self, principal: Principal) -> None:
        """Refuse before decoding when the day's STT seconds are spent (cost known after)."""
        await self._check(principal, STT_SECONDS)

    def audio_allowance(self, principal: Principal) -> Allowance:
        """The STT seconds one upload or stream may use: reserved before the model runs."""

        async def reserve(seconds: float) -> float:
            return await self.reserve_audio(principal, seconds)

        async def refund(seconds: float, at: float) -> None:
            await self.refund_audio(principal, seconds, at)

        return Allowance(reserve, refund)

    def text_allowance(self, principal: Principal) -> Allowance:
        """The TTS characters one request or stream may use: reserved before synthesis."""

        async def reserve(chars: float) -> float:
            return await self.reserve_text(principal, int(chars))

        async def refund(chars: float, at: float) -> None:
            await self.refund_text(principal, int(chars), at)

        return Allowance(reserve, refund)

    async def reserve_audio(self, principal: Principal, seconds: float) -> float:
        """Atomically take `seconds` of today's STT quota; the time it counts against."""
        return await self._reserve(principal, STT_SECONDS, seconds, "this audio alone")

    async def refund_audio(self, principal: Principal, seconds: float, at: float) -> None:
        await self._refund(principal, STT_SECONDS, seconds, at)

    async def connect(self, principal: Principal, connection_id: str) -> None:
        if not self.limited(principal):
            return
        limit = self.limits.connections_per_key
        group = f"{principal.key_id}:connections"
        now = self.clock.now()
        if not await self.store.join(group, connection_id, limit or UNBOUNDED, CONNECTION_TTL, now):
            whose = "these anonymous clients have" if principal == ANONYMOUS else "this key has"
            raise RateLimited(f"{whose} {limit} open connections already", 5)

    async def disconnect(self, principal: Principal, connection_id: str) -> None:
        if self.limited(principal):
            await self.store.leave(f"{principal.key_id}:connections", connection_id)

    async def usage(self, principal: Principal) -> Usage:
        """Read, never charged: what `principal` used today, this minute and now."""
        now, key_id = self.clock.now(), principal.key_id
        limited, limits = self.limited(principal), self.limits

        def meter(used: float, limit: int) -> Meter:
            if not limited or not limit:
                return Meter(used, None, None)
            return Meter(used, limit, max(0, round(limit - used, 3)))

        async def today(what: str) -> float:
            return round(await self.store.total(f"{key_id}:{what}", DAY, now), 3)

        recent = await self.store.count(f"{key_id}:requests", MINUTE, now)
        requests = meter(recent, limits.requests_per_minute)
        connections = await self.store.members(f"{key_id}:connections", now)
        return Usage(
            key_id=key_id,
            name=principal.name,
            day=datetime.fromtimestamp(now, UTC).date().isoformat(),
            resets_in_seconds=math.ceil(DAY - now % DAY),
            requests=RateMeter(requests.used, requests.limit, requests.left, MINUTE),
            tts_characters=meter(int(await today(TTS_CHARS)), limits.tts_chars_per_day),
            stt_seconds=meter(await today(STT_SECONDS), limits.stt_seconds_per_day),
            llm_characters=meter(int(await today(LLM_CHARS)), limits.llm_chars_per_day),
            connections=meter(connections, limits.connections_per_key),
        )

    def _quota(self, what: str) -> int:
        return {
            TTS_CHARS: self.limits.tts_chars_per_day,
            STT_SECONDS: self.limits.stt_seconds_per_day,
            LLM_CHARS: self.limits.llm_chars_per_day,
        }[what]

    async def _reserve(self, principal: Principal, what: str, amount: float, alone: str) -> float:
        """Atomically charge `amount` to today's `what` unless it would pass the limit (then
        nothing is charged); the time the charge counts against."""
        now = self.clock.now()
        if not self.limited(principal) or amount <= 0:
            return now
        bucket, limit, label = f"{principal.key_id}:{what}", self._quota(what), _LABELS[what]
        if not limit:
            await self.store.add(bucket, amount, DAY, now)  # counted, never refused
            return now
        if amount > limit:
            raise RateLimited(f"{alone} is over the limit of {limit} {label}", DAY)
        wait = await self.store.take(bucket, amount, limit, DAY, now)
        if wait:
            raise RateLimited(f"the limit of {limit} {label} is reached {_for(principal)}", wait)
        return now

    async def _refund(self, principal: Principal, what: str, amount: float, at: float) -> None:
        """Give back part of a charge made at `at` (to the day it was charged to)."""
        if self.limited(principal) and amount > 0:
            await self.store.add(f"{principal.key_id}:{what}", -amount, DAY, at)

    async def _check(self, principal: Principal, what: str) -> None:
        """Refuse when today's `what` is spent (the cost of the work is known only after)."""
        limit = self._quota(what)
        if not self.limited(principal) or not limit:
            return
        now = self.clock.now()
        if await self.store.total(f"{principal.key_id}:{what}", DAY, now) >= limit:
            message = f"the limit of {limit} {_LABELS[what]} is reached {_for(principal)}"
            raise RateLimited(message, DAY - now % DAY)


def _for(principal: Principal) -> str:
    return "for anonymous clients" if principal == ANONYMOUS else "for this key"
