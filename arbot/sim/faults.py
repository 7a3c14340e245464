"""Faults a test or an operator switches on at run time, per venue.

Counters ("the next N orders") are consumed as events happen; switches (delay, stall,
skew) stay until turned off. The control API (``POST /_sim/faults``) sets them by the
field names below, validated.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """The fault state of one venue."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    rest_errors: list[int] = Field(
        default_factory=list,
        description="HTTP statuses for the next REST requests, one each (429, 418, 500, 503).",
    )
    retry_after_s: int = Field(1, ge=0, description="Retry-After sent with 429 and 418.")
    rest_stall_s: float = Field(0.0, ge=0, description="Hold every REST answer this long.")
    ws_delay_ms: float = Field(0.0, ge=0, description="Deliver websocket messages this much later.")
    ws_stall: bool = Field(False, description="Keep websockets open but send nothing.")
    skip_sequence: int = Field(0, ge=0, description="Lose the next N book diffs (a sequence gap).")
    skip_symbols: list[str] = Field(
        default_factory=list,
        description="Only diffs of these symbols count for skip_sequence (empty: any symbol).",
    )
    clock_skew_ms: int = Field(0, description="Shift the venue clock (signed requests expire).")
    reject_orders: int = Field(0, ge=0, description="Reject the next N orders.")
    partial_fill_orders: int = Field(0, ge=0, description="Fill the next N orders only partly...")
    partial_fill_ratio: float = Field(
        0.5, ge=0, lt=1, description="...up to this fraction of their amount."
    )

    def take_sequence_skip(self, symbol: str) -> bool:
        if self.skip_sequence > 0 and (not self.skip_symbols or symbol in self.skip_symbols):
            self.skip_sequence -= 1
            return True
        return False

    def take_order_rejection(self) -> bool:
        if self.reject_orders > 0:
            self.reject_orders -= 1
            return True
        return False

    def take_rest_error(self) -> int | None:
        if not self.rest_errors:
            return None
        status, *rest = self.rest_errors
        self.rest_errors = rest
        return status

    def cap_fill(self, lots: int) -> int:
        """The most an order of ``lots`` may fill under the partial-fill fault."""
        if self.partial_fill_orders > 0:
            self.partial_fill_orders -= 1
            return int(lots * self.partial_fill_ratio)
        return lots

    def update(self, changes: dict[str, Any]) -> None:
        """Set faults by name, validated; raises ``ValueError`` naming a bad one."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            known = ", ".join(type(self).model_fields)
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {known}")
        for name, value in changes.items():
            setattr(self, name, value)

    def clear(self) -> None:
        for name, field in type(self).model_fields.items():
            setattr(self, name, field.get_default(call_default_factory=True))
