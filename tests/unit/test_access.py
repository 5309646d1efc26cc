"""API keys, tokens and per-key limits, with a fake clock and the in-memory store."""

from __future__ import annotations

import asyncio
import hashlib

import msgspec
import pytest

from adapters.memory_limits import InMemoryLimits
from application.access import (
    ANONYMOUS,
    Access,
    Credential,
    InvalidToken,
    KeyRing,
    Limits,
    RateLimited,
    Unauthorized,
)
from tests.unit.fakes import FakeClock


def access(limits: Limits | None = None, ttl: int = 60) -> tuple[Access, FakeClock]:
    clock = FakeClock()
    digest = hashlib.sha256(b"carol-secret").hexdigest()
    keys = KeyRing(["alice:alice-secret", "bob-secret", f"carol:sha256:{digest}"])
    return Access(keys, InMemoryLimits(), clock, limits=limits, token_ttl=ttl), clock


def test_keys_are_identified_by_name_and_digest_only() -> None:
    guard, _ = access()
    alice = guard.authenticate("alice-secret")
    assert alice.name == "alice" and len(alice.key_id) == 12 and "secret" not in alice.key_id
    assert guard.authenticate("bob-secret").name == "key2"
    assert guard.authenticate("carol-secret").name == "carol"  # configured as a digest
    for bad in (None, "", "alice-secre", "alice-secret ", "ALICE-SECRET"):
        with pytest.raises(Unauthorized):
            guard.authenticate(bad)


def test_no_keys_means_open() -> None:
    guard = Access(KeyRing([]), InMemoryLimits(), FakeClock())
    assert guard.open and guard.authenticate(None) is ANONYMOUS


async def test_tokens_work_once_and_expire() -> None:
    guard, clock = access(ttl=30)
    alice = guard.authenticate("alice-secret")
    token = guard.issue_token(alice)
    assert await guard.redeem(token, "socket") == alice
    with pytest.raises(InvalidToken, match="already used"):
        await guard.redeem(token, "socket")
    late = guard.issue_token(alice)
    clock.t += 31
    with pytest.raises(InvalidToken, match="expired"):
        await guard.redeem(late, "socket")
    other = Access(KeyRing(["alice:another-secret"]), InMemoryLimits(), clock)
    with pytest.raises(InvalidToken, match="not valid"):  # signed with other keys
        await other.redeem(guard.issue_token(alice), "socket")


async def test_a_token_opens_only_what_its_scope_names() -> None:
    guard, _ = access()
    alice = guard.authenticate("alice-secret")
    secret = guard.issue_token(alice, 600, scope="realtime")
    with pytest.raises(InvalidToken, match="/v1/realtime only"):
        await guard.redeem(secret, "socket")
    assert await guard.redeem(secret, ("socket", "realtime")) == alice  # refused: not spent
    key_id, expires, nonce, _, signature = guard.issue_token(alice, scope="realtime").split(".")
    widened = f"{key_id}.{expires}.{nonce}.socket.{signature}"  # the scope is signed
    with pytest.raises(InvalidToken, match="not valid"):
        await guard.redeem(widened, "socket")
    with pytest.raises(InvalidToken, match="socket token does not open"):
        await guard.redeem(guard.issue_token(alice), "realtime")
    with pytest.raises(ValueError, match="scope"):
        guard.issue_token(alice, scope="everything")


async def test_identify_resolves_each_credential_once_for_every_transport() -> None:
    guard, _ = access()
    alice = guard.authenticate("alice-secret")
    assert await guard.identify(Credential(key="alice-secret")) == alice
    assert await guard.identify(Credential(key="alice-secret", token="junk")) == alice  # key first
    with pytest.raises(Unauthorized):
        await guard.identify(Credential(key="wrong", token=guard.issue_token(alice)))
    assert await guard.identify(Credential(token=guard.issue_token(alice))) == alice
    secret = guard.issue_token(alice, 600, scope="realtime")
    with pytest.raises(InvalidToken, match="/v1/realtime only"):
        await guard.identify(Credential(secret=secret))
    with pytest.raises(InvalidToken, match="/v1/realtime only"):
        await guard.identify(Credential(token=secret))  # a secret passed off as a token
    assert await guard.identify(Credential(secret=secret), realtime=True) == alice
    socket_token = guard.issue_token(alice)  # Realtime also takes a POST /api/token token
    assert await guard.identify(Credential(secret=socket_token), realtime=True) == alice
    realtime_token = guard.issue_token(alice, 600, scope="realtime")
    assert await guard.identify(Credential(token=realtime_token), realtime=True) == alice
    with pytest.raises(Unauthorized, match="API key is required"):
        await guard.identify(Credential())
    with pytest.raises(Unauthorized):
        await guard.identify(Credential(), realtime=True)
    open_guard = Access(KeyRing([]), InMemoryLimits(), FakeClock())
    assert await open_guard.identify(Credential()) is ANONYMOUS
    assert await open_guard.identify(Credential(secret="x")) is ANONYMOUS


async def test_per_key_limits_are_separate() -> None:
    guard, clock = access(Limits(requests_per_minute=2, tts_chars_per_day=10))
    alice, bob = guard.authenticate("alice-secret"), guard.authenticate("bob-secret")
    await guard.admit_request(alice)
    await guard.admit_request(alice)
    with pytest.raises(RateLimited) as limited:
        await guard.admit_request(alice)
    assert 1 <= limited.value.retry_after <= 60
    await guard.admit_request(bob)
    await guard.charge_text(alice, 10)
    with pytest.raises(RateLimited, match="characters"):
        await guard.charge_text(alice, 1)
    clock.t += 86_400
    await guard.charge_text(alice, 10)  # a new day


async def used_today(guard: Access, who: str) -> float:
    return await guard.store.total(
        f"{guard.authenticate(who).key_id}:stt_seconds", 86_400, guard.clock.now()
    )


async def test_uploads_reserve_their_seconds_so_concurrent_ones_cannot_overspend() -> None:
    """12 concurrent 30 s uploads against a 120 s quota: 4 pass, and 120 s are charged."""
    guard, _ = access(Limits(stt_seconds_per_day=120))
    alice = guard.authenticate("alice-secret")

    async def upload() -> bool:
        allowance = guard.audio_allowance(alice)
        try:
            await allowance.reserve(30.0)
        except RateLimited:
            return False
        await asyncio.sleep(0)  # the model runs while others reserve
        await allowance.settle()
        return True

    results = await asyncio.gather(*(upload() for _ in range(12)))
    assert results.count(True) == 4
    assert await used_today(guard, "alice-secret") == pytest.approx(120.0)
    with pytest.raises(RateLimited, match="audio seconds"):
        await guard.check_audio(alice)


async def test_a_stream_pays_exactly_what_it_used() -> None:
    """Frames of any size: reserved a whole second ahead, settled to the exact seconds used."""
    guard, _ = access(Limits(stt_seconds_per_day=100))
    alice = guard.authenticate("alice-secret")
    allowance = guard.audio_allowance(alice)
    for seconds in (0.02, 8.192, 0.5, 3.3):  # a 20 ms frame, a 256 KiB frame, ...
        await allowance.use(seconds)
        assert allowance.reserved >= allowance.used
        assert allowance.reserved - allowance.used < 1.0
    await allowance.settle()
    assert await used_today(guard, "alice-secret") == pytest.approx(12.012)
    failed = guard.audio_allowance(alice)
    await failed.use(5.0)
    failed.unuse(5.0)  # refused before the model heard it
    await failed.settle()
    assert await used_today(guard, "alice-secret") == pytest.approx(12.012)
    big = guard.audio_allowance(alice)
    with pytest.raises(RateLimited):
        await big.use(90.0)  # only 87.988 s are left
    await big.settle()
    assert await used_today(guard, "alice-secret") == pytest.approx(12.012)


async def test_zero_means_unlimited() -> None:
    guard, _ = access(Limits(requests_per_minute=0, connections_per_key=1))
    alice = guard.authenticate("alice-secret")
    for _ in range(1000):
        await guard.admit_request(alice)
    await guard.connect(alice, "c1")
    with pytest.raises(RateLimited, match="open connections"):
        await guard.connect(alice, "c2")
    await guard.disconnect(alice, "c1")
    await guard.connect(alice, "c2")


async def test_with_keys_the_anonymous_clients_share_one_keys_limits() -> None:
    """With API_KEYS set, the only anonymous clients are Wyoming's (no authentication there):
    all of them together live under one key's limits, in one bucket, apart from every key."""
    guard, _ = access(
        Limits(
            requests_per_minute=2,
            tts_chars_per_day=10,
            stt_seconds_per_day=5,
            connections_per_key=1,
        )
    )
    await guard.charge_text(ANONYMOUS, 10)
    with pytest.raises(RateLimited, match="characters"):
        await guard.charge_text(ANONYMOUS, 1)
    with pytest.raises(RateLimited, match="audio seconds"):
        await guard.reserve_audio(ANONYMOUS, 6)
    await guard.reserve_audio(ANONYMOUS, 5)
    with pytest.raises(RateLimited, match="audio seconds"):
        await guard.check_audio(ANONYMOUS)
    await guard.admit_request(ANONYMOUS)
    await guard.admit_request(ANONYMOUS)
    with pytest.raises(RateLimited, match="requests a minute"):
        await guard.admit_request(ANONYMOUS)
    await guard.connect(ANONYMOUS, "a1")
    with pytest.raises(RateLimited, match="open connections"):
        await guard.connect(ANONYMOUS, "a2")
    alice = guard.authenticate("alice-secret")  # a key's limits are its own
    await guard.charge_text(alice, 10)
    await guard.reserve_audio(alice, 5)
    await guard.admit_request(alice)
    await guard.connect(alice, "c1")
    assert await guard.store.total("anonymous:tts_chars", 86_400, guard.clock.now()) == 10


async def test_a_flood_across_a_minute_boundary_gets_the_limit_once() -> None:
    """The old fixed window let 2x the limit through around :00; a moving window does not."""
    guard, clock = access(Limits(requests_per_minute=5))
    alice = guard.authenticate("alice-secret")
    clock.t += 59 - clock.now() % 60  # one second before a minute boundary
    admitted = 0
    for _ in range(40):  # 40 requests over 4 s, across the boundary
        try:
            await guard.admit_request(alice)
            admitted += 1
        except RateLimited as limited:
            assert 56 <= limited.retry_after <= 60
        clock.t += 0.1
    assert admitted == 5
    clock.t += 57  # the first five are now a minute old
    await guard.admit_request(alice)


@pytest.mark.parametrize(
    ("keys", "mode", "limited"),
    [
        ([], "auto", False),  # open, local use: nothing is limited, as always
        ([], "on", True),
        ([], "off", False),
        (["alice:alice-secret"], "auto", True),
        (["alice:alice-secret"], "on", True),
        (["alice:alice-secret"], "off", False),
    ],
)
async def test_anonymous_limits_follow_the_setting(
    keys: list[str], mode: str, limited: bool
) -> None:
    limits = Limits(requests_per_minute=1, tts_chars_per_day=5, connections_per_key=1)
    guard = Access(
        KeyRing(keys), InMemoryLimits(), FakeClock(), limits=limits, anonymous_limits=mode
    )
    assert guard.limited(ANONYMOUS) is limited
    await guard.admit_request(ANONYMOUS)
    await guard.charge_text(ANONYMOUS, 5)
    await guard.connect(ANONYMOUS, "a1")
    for refused in (
        guard.admit_request(ANONYMOUS),
        guard.charge_text(ANONYMOUS, 1),
        guard.connect(ANONYMOUS, "a2"),
    ):
        if limited:
            with pytest.raises(RateLimited, match="anonymous clients"):
                await refused
        else:
            await refused


def test_anonymous_limits_is_auto_on_or_off() -> None:
    with pytest.raises(ValueError, match="anonymous_limits"):
        Access(KeyRing([]), InMemoryLimits(), FakeClock(), anonymous_limits="maybe")


def test_settings_read_anonymous_limits_and_refuse_other_values() -> None:
    from entrypoints.settings import Settings, SettingsError

    assert Settings.from_env({}).anonymous_limits == "auto"
    assert Settings.from_env({"ANONYMOUS_LIMITS": "on"}).anonymous_limits == "on"
    with pytest.raises(SettingsError, match="ANONYMOUS_LIMITS must be auto, on or off"):
        Settings.from_env({"ANONYMOUS_LIMITS": "yes"})
    with pytest.raises(SettingsError, match="LLM_CHARS_PER_DAY"):
        Settings.from_env({"LLM_CHARS_PER_DAY": "-1"})
    assert Settings.from_env({}).llm_chars_per_day == 1_000_000


async def today(guard: Access, who: str, what: str) -> float:
    key_id = guard.authenticate(who).key_id
    return await guard.store.total(f"{key_id}:{what}", 86_400, guard.clock.now())


async def test_text_is_reserved_then_settled_and_a_refusal_costs_nothing() -> None:
    guard, clock = access(Limits(tts_chars_per_day=100))
    alice = guard.authenticate("alice-secret")
    at = await guard.reserve_text(alice, 80)
    assert at == clock.now() and await today(guard, "alice-secret", "tts_chars") == 80
    with pytest.raises(RateLimited, match="TTS characters") as refused:
        await guard.reserve_text(alice, 30)
    assert refused.value.retry_after > 0
    assert await today(guard, "alice-secret", "tts_chars") == 80  # refused: nothing charged
    with pytest.raises(RateLimited, match="alone"):
        await guard.reserve_text(alice, 101)
    await guard.refund_text(alice, 50, at)  # only 30 of the 80 were spoken
    assert await today(guard, "alice-secret", "tts_chars") == 30
    await guard.reserve_text(alice, 70)  # the refunded characters are free again
    clock.t += 86_400
    await guard.refund_text(alice, 70, at)  # settled after midnight: back to its own day
    assert await today(guard, "alice-secret", "tts_chars") == 0
    clock.t -= 86_400
    assert await today(guard, "alice-secret", "tts_chars") == 30
    await guard.charge_text(alice, 1)  # a reservation never refunded
    assert await today(guard, "alice-secret", "tts_chars") == 31


async def test_concurrent_text_reservations_never_pass_the_quota() -> None:
    guard, _ = access(Limits(tts_chars_per_day=100))
    alice = guard.authenticate("alice-secret")

    async def speak() -> bool:
        try:
            at = await guard.reserve_text(alice, 30)
        except RateLimited:
            return False
        await asyncio.sleep(0)
        await guard.refund_text(alice, 5, at)  # 25 of the 30 spoken
        return True

    assert (await asyncio.gather(*(speak() for _ in range(10)))).count(True) == 3
    assert await today(guard, "alice-secret", "tts_chars") == 75


async def test_chat_model_characters_are_checked_before_and_counted_after() -> None:
    guard, clock = access(Limits(llm_chars_per_day=100))
    alice, bob = guard.authenticate("alice-secret"), guard.authenticate("bob-secret")
    await guard.check_llm(alice)
    await guard.add_llm(alice, 60)
    await guard.check_llm(alice)  # 40 left: the model may answer
    await guard.add_llm(alice, 60)  # the answer is counted whole, past the limit
    assert await today(guard, "alice-secret", "llm_chars") == 120
    with pytest.raises(RateLimited, match="chat-model characters") as spent:
        await guard.check_llm(alice)
    assert 1 <= spent.value.retry_after <= 86_400
    await guard.check_llm(bob)  # a key's meter is its own
    await guard.add_llm(alice, 0)
    clock.t += 86_400
    await guard.check_llm(alice)  # a new day


async def test_a_limit_of_zero_refuses_nothing_but_still_counts() -> None:
    limits = Limits(
        requests_per_minute=0,
        tts_chars_per_day=0,
        stt_seconds_per_day=0,
        llm_chars_per_day=0,
        connections_per_key=0,
    )
    guard, _ = access(limits)
    alice = guard.authenticate("alice-secret")
    at = await guard.reserve_text(alice, 10**7)
    await guard.refund_text(alice, 10**6, at)
    await guard.reserve_audio(alice, 10**6)
    await guard.add_llm(alice, 10**7)
    await guard.check_llm(alice)
    await guard.check_audio(alice)
    for i in range(50):
        await guard.admit_request(alice)
        await guard.connect(alice, f"c{i}")
    assert await today(guard, "alice-secret", "tts_chars") == 9 * 10**6
    assert await today(guard, "alice-secret", "stt_seconds") == 10**6
    assert await today(guard, "alice-secret", "llm_chars") == 10**7
    assert await guard.store.count(f"{alice.key_id}:requests", 60, guard.clock.now()) == 50
    assert await guard.store.members(f"{alice.key_id}:connections", guard.clock.now()) == 50


async def test_usage_reads_what_the_limits_count_and_charges_nothing() -> None:
    guard, clock = access(Limits(requests_per_minute=5, tts_chars_per_day=100, llm_chars_per_day=0))
    clock.t = 1_796_601_600.0 - 1_700_000_000.0 + 50_000  # 2026-12-07, 13:53:20 UTC
    alice = guard.authenticate("alice-secret")
    await guard.admit_request(alice)
    await guard.admit_request(alice)
    await guard.charge_text(alice, 42)
    allowance = guard.audio_allowance(alice)
    await allowance.use(2.25)
    await allowance.settle()
    await guard.add_llm(alice, 7)
    await guard.connect(alice, "c1")
    for _ in range(2):  # reading twice: nothing was charged by the first read
        usage = await guard.usage(alice)
        assert msgspec.to_builtins(usage) == {
            "key_id": alice.key_id,
            "name": "alice",
            "day": "2026-12-07",
            "resets_in_seconds": 36_400,
            "requests": {"used": 2, "limit": 5, "left": 3, "window_seconds": 60},
            "tts_characters": {"used": 42, "limit": 100, "left": 58},
            "stt_seconds": {"used": 2.25, "limit": 36_000, "left": 35_997.75},
            "llm_characters": {"used": 7, "limit": None, "left": None},  # 0: no limit
            "connections": {"used": 1, "limit": 10, "left": 9},
        }
    bob = await guard.usage(guard.authenticate("bob-secret"))
    assert (bob.requests.used, bob.tts_characters.used, bob.connections.used) == (0, 0, 0)
    await guard.charge_text(alice, 58)
    assert (await guard.usage(alice)).tts_characters.left == 0
    open_guard = Access(KeyRing([]), InMemoryLimits(), clock)
    anonymous = await open_guard.usage(ANONYMOUS)  # open, local use: nothing is limited
    assert anonymous.name == "anonymous" and anonymous.tts_characters.limit is None
