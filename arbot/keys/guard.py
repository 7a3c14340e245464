"""The first layer of the no-withdraw rule: no order until the key is proven trade-only.

Every order path asks :meth:`PermissionGuard.require` for its venue first. The guard
probes the key (the real exchange answer, through :mod:`arbot.keys.permissions`) before
the first order and again whenever the last proof is older than
``risk.permission_recheck_s``; :meth:`PermissionGuard.recheck_forever` also re-proves
every venue on that timer while the daemon runs.

* ``unsafe`` (can withdraw or transfer out) blocks the venue; nothing waives it.
* ``unverified`` blocks the venue unless the operator set ``allow_unverified_key`` for
  it, in which case every use is logged as a warning.
* A key that was allowed and turns ``unsafe`` while running **halts all trading**:
  :attr:`halted` is set, the ``on_halt`` callback cancels open orders, and every later
  :meth:`require` raises until an operator restarts with a safe key.

Every probe result goes to the ``record`` callback (the store's ``permission_checks``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from arbot.errors import ArbotError
from arbot.keys.model import KeyPermissions, Verdict

Prober = Callable[[], Awaitable[KeyPermissions]]
Recorder = Callable[[str, KeyPermissions], None]
HaltHandler = Callable[[str], Awaitable[None]]


class KeyNotTradeOnly(ArbotError):
    """The venue's key is not proven trade-only: no order is sent there."""


class TradingHalted(ArbotError):
    """A key gained funds-moving rights while running: all trading stopped."""


@dataclass
class _Venue:
    prober: Prober
    allow_unverified: bool
    proof: KeyPermissions | None = None
    proven_at: float = float("-inf")
    allowed_before: bool = False


def _log_warning(message: str) -> None:
    from loguru import logger

    logger.warning(message)


class PermissionGuard:
    """Proves each venue's key trade-only before orders, and keeps proving it."""

    def __init__(
        self,
        recheck_s: float,
        *,
        record: Recorder | None = None,
        on_halt: HaltHandler | None = None,
        clock: Callable[[], float] = time.monotonic,
        warn: Callable[[str], None] = _log_warning,
    ) -> None:
        self.recheck_s = recheck_s
        self._record = record
        self._on_halt = on_halt
        self._clock = clock
        self._warn = warn
        self._venues: dict[str, _Venue] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.halted: str | None = None

    def register(self, venue: str, prober: Prober, *, allow_unverified: bool = False) -> None:
        self._venues[venue] = _Venue(prober, allow_unverified)
        self._locks[venue] = asyncio.Lock()
        if allow_unverified:
            self._warn(
                f"{venue}: allow_unverified_key is on: a key whose rights cannot be proven "
                "will be traded with (a key that can withdraw is still refused)"
            )

    def last_proof(self, venue: str) -> KeyPermissions | None:
        return self._venues[venue].proof

    async def require(self, venue: str) -> None:
        """Return only if an order may be sent on ``venue`` now; raise otherwise."""
        if self.halted:
            raise TradingHalted(self.halted)
        state = self._venues.get(venue)
        if state is None:
            raise KeyNotTradeOnly(f"{venue}: no key registered with the permission guard")
        if self._stale(state):
            async with self._locks[venue]:
                if self._stale(state):  # another task may have proven it meanwhile
                    await self._probe(venue, state)
        if self.halted:
            raise TradingHalted(self.halted)
        self._judge(venue, state)

    def _stale(self, state: _Venue) -> bool:
        return state.proof is None or self._clock() - state.proven_at >= self.recheck_s

    async def check(self, venue: str) -> KeyPermissions:
        """Probe ``venue``'s key now, record the answer, and halt if it turned unsafe."""
        state = self._venues[venue]
        async with self._locks[venue]:
            return await self._probe(venue, state)

    async def _probe(self, venue: str, state: _Venue) -> KeyPermissions:
        permissions = await state.prober()
        state.proof = permissions
        state.proven_at = self._clock()
        if self._record is not None:
            self._record(venue, permissions)
        if permissions.verdict is Verdict.UNSAFE and state.allowed_before:
            await self.halt(
                f"{venue}: the key gained funds-moving rights while running "
                f"({permissions.reason}); all trading halted, open orders cancelled"
            )
        return permissions

    def _judge(self, venue: str, state: _Venue) -> None:
        proof = state.proof
        assert proof is not None
        verdict = proof.verdict
        if verdict is Verdict.TRADE_ONLY:
            state.allowed_before = True
            return
        if verdict is Verdict.UNVERIFIED and state.allow_unverified:
            state.allowed_before = True
            self._warn(f"{venue}: trading with an unverified key ({proof.reason})")
            return
        raise KeyNotTradeOnly(
            f"{venue}: refusing to trade: {proof.reason}; run arbot keys check {venue}"
        )

    async def halt(self, reason: str) -> None:
        if self.halted:
            return
        self.halted = reason
        self._warn(reason)
        if self._on_halt is not None:
            await self._on_halt(reason)

    async def recheck_forever(self) -> None:
        """Re-prove every venue every ``recheck_s`` seconds (a daemon task)."""
        while not self.halted:
            await asyncio.sleep(self.recheck_s)  # the re-check timer itself
            for venue in list(self._venues):
                await self.check(venue)
