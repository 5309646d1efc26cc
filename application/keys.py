"""Who a caller is: API keys (kept as digests, compared in constant time) and the one-time
tokens a key may hand a browser.

Rules:
- Keys are kept only as SHA-256 digests and compared in constant time against every key.
- A token is signed, names its key and its scope, expires after its time to live and is
  accepted once (also across instances sharing a store). Scope `socket` (POST /api/token)
  opens the service's WebSockets; scope `realtime` (a Realtime client secret, `ek_…`) opens
  /v1/realtime only, which also accepts `socket` tokens. A refused token is not spent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

import msgspec

from application.ports import Clock, LimitStore
from domain.errors import VoicePipeError

SOCKET, REALTIME = "socket", "realtime"  # token scopes
SCOPES = (SOCKET, REALTIME)


class Credential(msgspec.Struct, frozen=True):
    """What a client presented, as its transport found it; at most one is used (in order)."""

    key: str | None = None  # an API key
    token: str | None = None  # a one-time token from POST /api/token
    secret: str | None = None  # a Realtime client secret, its `ek_` prefix removed


class Principal(msgspec.Struct, frozen=True):
    key_id: str  # first hex digits of the key's digest: safe in logs, events and metrics
    name: str


ANONYMOUS = Principal("anonymous", "anonymous")


class Unauthorized(VoicePipeError):
    code = "unauthorized"
    status = 401


class InvalidToken(VoicePipeError):
    code = "invalid_token"
    status = 401


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """API keys from settings: `key`, `name:key`, or `name:sha256:<hex digest>` entries."""

    def __init__(self, entries: Sequence[str]) -> None:
        self._keys: list[tuple[bytes, Principal]] = []
        for i, entry in enumerate(entries):
            name, _, rest = entry.partition(":") if ":" in entry else (f"key{i + 1}", "", entry)
            if rest.startswith("sha256:"):
                digest = bytes.fromhex(rest.removeprefix("sha256:"))
            else:
                digest = key_digest(rest)
            self._keys.append((digest, Principal(digest.hex()[:12], name)))

    @property
    def open(self) -> bool:
        return not self._keys

    def identify(self, presented: str) -> Principal | None:
        digest = key_digest(presented)
        found = None
        for stored, principal in self._keys:  # no early exit: same time for every key
            if hmac.compare_digest(stored, digest):
                found = principal
        return found

    def principal(self, key_id: str) -> Principal | None:
        return next((p for _, p in self._keys if p.key_id == key_id), None)

    def secret(self) -> bytes:
        """Token signing secret: the same on every instance that has the same keys."""
        return hashlib.sha256(
            b"voicepipe-token:" + b"".join(sorted(d for d, _ in self._keys))
        ).digest()


class Tokens:
    """One-time tokens for a ring's keys, signed with a secret derived from the keys."""

    def __init__(self, keys: KeyRing, store: LimitStore, clock: Clock, ttl: int) -> None:
        self.keys = keys
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self._secret = keys.secret()

    def issue(self, principal: Principal, ttl: int | None = None, *, scope: str = SOCKET) -> str:
        """A one-time token for `scope`; `ttl`: seconds it may wait to be used (default
        `token_ttl`)."""
        if scope not in SCOPES:
            raise ValueError(f"a token's scope is one of {SCOPES}")
        expires = int(self.clock.now()) + (ttl or self.ttl)
        body = f"{principal.key_id}.{expires}.{secrets.token_hex(8)}.{scope}"
        return f"{body}.{self._sign(body)}"

    async def redeem(self, token: str, scope: str | tuple[str, ...]) -> Principal:
        """The key a token was issued to, if its scope is `scope` (or one of them); a token
        works once, and only before it expires. A refused token is not spent."""
        parts = token.split(".")
        if len(parts) != 5 or not parts[1].isdigit():
            raise InvalidToken("the token is malformed")
        key_id, expires, nonce, issued_for, signature = parts
        body = ".".join(parts[:4])
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidToken("the token is not valid")
        wanted = (scope,) if isinstance(scope, str) else scope
        if issued_for not in wanted:
            if issued_for == REALTIME:
                raise InvalidToken("a client secret (ek_…) opens /v1/realtime only")
            raise InvalidToken(f"a {issued_for} token does not open this connection")
        if int(expires) < self.clock.now():
            again = (
                "POST /v1/realtime/client_secrets" if issued_for == REALTIME else "POST /api/token"
            )
            raise InvalidToken(f"the token has expired; ask {again} for a new one")
        principal = self.keys.principal(key_id)
        if principal is None:
            raise InvalidToken("the token's key is no longer valid")
        remaining = int(expires) - self.clock.now() + 1
        if not await self.store.first_use(f"token:{nonce}", remaining):
            raise InvalidToken("the token was already used; tokens work once")
        return principal

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()
