"""Use case: who an HTTP request is and whether it may go on; what a key may see of itself.
Transports come here (or to the connection core, the sessions) and never to the limits."""

from __future__ import annotations

from application.access import SOCKET, Access, Credential, Principal, Usage


class Admission:
    def __init__(self, access: Access) -> None:
        self.access = access

    @property
    def open(self) -> bool:
        """No API keys: everyone is the anonymous principal."""
        return self.access.open

    @property
    def token_ttl(self) -> int:
        return self.access.token_ttl

    def identify(self, credential: Credential) -> Principal:
        """The request's key (anonymous when the service is open); raises Unauthorized."""
        return self.access.authenticate(credential.key)

    async def admit(self, principal: Principal) -> None:
        """One request of the key's rate; raises RateLimited."""
        await self.access.admit_request(principal)

    def token(self, principal: Principal, *, scope: str = SOCKET, ttl: int | None = None) -> str:
        """A one-time token (or Realtime client secret) for this key."""
        return self.access.issue_token(principal, ttl, scope=scope)

    async def usage(self, principal: Principal) -> Usage:
        return await self.access.usage(principal)
