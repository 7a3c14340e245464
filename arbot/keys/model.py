"""What a key may do, as one value every exchange's answer is turned into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The guard's reading of a key.

    ``trade_only``: proven able to trade and unable to move funds out.
    ``unsafe``: can withdraw or transfer funds out — never traded with.
    ``unverified``: the exchange's answer could not prove either (unknown tokens or
    fields, a failed call, an exchange without a probe).
    """

    TRADE_ONLY = "trade_only"
    UNSAFE = "unsafe"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class KeyPermissions:
    """One key's rights. ``None`` means the exchange did not say.

    ``unknown`` lists permission tokens or fields the parser did not recognise; any of
    them makes the key unverifiable (fail closed). ``raw`` is the exchange's answer,
    kept for the record (it never contains the secret).
    """

    read: bool | None
    trade: bool | None
    withdraw: bool | None
    transfer: bool | None
    ip_restricted: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    unknown: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def verdict(self) -> Verdict:
        if self.withdraw or self.transfer:
            return Verdict.UNSAFE
        if self.problem or self.unknown:
            return Verdict.UNVERIFIED
        if self.withdraw is False and self.transfer is False and self.trade is True:
            return Verdict.TRADE_ONLY
        return Verdict.UNVERIFIED

    @property
    def reason(self) -> str:
        """One line for tables and logs: why the verdict is what it is."""
        if self.withdraw:
            return "the key can withdraw funds"
        if self.transfer:
            return "the key can transfer funds out of the trading account"
        if self.problem:
            return self.problem
        if self.unknown:
            return f"unrecognised permission(s): {', '.join(self.unknown)}"
        if self.trade is not True:
            return "the key cannot trade" if self.trade is False else "trading right not reported"
        if self.withdraw is None or self.transfer is None:
            return "withdraw/transfer rights not reported"
        return "trade-only"

    @classmethod
    def unprovable(cls, problem: str, raw: Mapping[str, Any] | None = None) -> KeyPermissions:
        """A key whose rights could not be read at all."""
        return cls(None, None, None, None, None, raw or {}, (), problem)
