"""The kill switch: once tripped, no new opportunity is approved until an operator resets it.

The state lives in the store's ``kill_switch`` table: every trip and every reset is a
row, and the newest row is the state. So the switch is shared by every daemon on one
database, survives a restart (a daemon that stopped halted starts halted), and can be
thrown from another process (``arbot halt`` / ``arbot resume``).

In memory the switch is a cached flag (:attr:`KillSwitch.is_tripped`, read on the hot
path); :meth:`KillSwitch.refresh` reads the newest row, and :meth:`KillSwitch.watch`
refreshes on a timer (every 0.5 s in the daemon) so a halt from elsewhere takes effect
within one interval.

Fail closed: while the table cannot be read, :meth:`KillSwitch.watch` holds the switch
tripped in memory (reason ``kill_switch_unreadable``, not written anywhere) and lets it
go at the first successful read.

Trippers and their reasons: the risk engine (``max_daily_loss``,
``max_consecutive_failures``, source ``risk``) and the operator (``arbot halt``, reason
``operator`` unless ``--reason`` says otherwise, source ``operator``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arbot.store import Store

TRIP = "trip"
RESET = "reset"
UNREADABLE = "kill_switch_unreadable"


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    """What the newest row says. ``row_id`` orders states (``0``: never thrown)."""

    tripped: bool
    reason: str | None = None
    source: str | None = None
    at: datetime | None = None
    row_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tripped": self.tripped,
            "reason": self.reason,
            "source": self.source,
            "at": self.at.isoformat() if self.at is not None else None,
        }

    def describe(self) -> str:
        if not self.tripped:
            return "kill switch: reset (taking opportunities)"
        return f"kill switch: TRIPPED ({self.reason}, by {self.source}); run arbot resume to reset"


Listener = Callable[[KillSwitchState, KillSwitchState], None]
"""Called with ``(old, new)`` whenever :attr:`KillSwitch.is_tripped` changes."""


class KillSwitch:
    """A persistent, shared stop flag.

    ``store=None`` keeps the state in memory only (backtests, unit tests): nothing
    survives the object. Building one over a store reads the current state at once.
    """

    def __init__(self, store: Store | None, *, run_id: int | None = None) -> None:
        self._store = store
        self._run_id = run_id
        self._state = KillSwitchState(False)
        self._unreadable: str | None = None
        self._listeners: list[Listener] = []
        self.is_tripped = False
        """Cached: the newest known row is a trip, or the table is unreadable."""
        if store is not None:
            self.refresh()

    @property
    def state(self) -> KillSwitchState:
        """The newest known row (an unreadable table shows as a trip)."""
        if self._unreadable is not None:
            return KillSwitchState(True, UNREADABLE, "kill_switch", None, self._state.row_id)
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Be told of every change of :attr:`is_tripped` (trip, reset, or seen in a refresh)."""
        self._listeners.append(listener)

    def trip(self, reason: str, source: str = "risk") -> KillSwitchState:
        """Stop approving opportunities; written to the store before it returns."""
        return self._write(TRIP, reason, source)

    def reset(self, source: str = "operator", reason: str = "operator") -> KillSwitchState:
        """Allow opportunities again (an operator decision: ``arbot resume``)."""
        return self._write(RESET, reason, source)

    def _write(self, action: str, reason: str, source: str) -> KillSwitchState:
        from arbot.store._types import utcnow

        at = utcnow()
        row_id = self._state.row_id + 1
        if self._store is not None:
            from arbot.store import KillSwitchRow

            row = KillSwitchRow(
                at=at, action=action, reason=reason, source=source, run_id=self._run_id
            )
            try:
                with self._store.session() as session:
                    session.add(row)
                    session.flush()
                    assert row.id is not None
                    row_id = row.id
            except Exception:
                if action == TRIP:  # fail closed: stop here even if the record failed
                    self._set(KillSwitchState(True, reason, source, at, row_id), self._unreadable)
                raise
        self._set(KillSwitchState(action == TRIP, reason, source, at, row_id), self._unreadable)
        return self._state

    def refresh(self) -> KillSwitchState:
        """Read the newest row (another process may have written one) and cache it.

        Raises the store's error when the table cannot be read; :meth:`watch` turns that
        into a fail-closed trip held in memory.
        """
        self._apply(self._read())
        return self.state

    def _read(self) -> KillSwitchState | None:
        """The newest row as a state (``None``: no row yet). Safe in a worker thread."""
        if self._store is None:
            return self._state
        from sqlmodel import col, select

        from arbot.store import KillSwitchRow

        with self._store.session() as session:
            row = session.exec(
                select(KillSwitchRow).order_by(col(KillSwitchRow.id).desc()).limit(1)
            ).first()
        if row is None or row.id is None:
            return None
        return KillSwitchState(row.action == TRIP, row.reason, row.source, row.at, row.id)

    def _apply(self, newest: KillSwitchState | None) -> None:
        # A row older than one we wrote ourselves (a read that raced our own write)
        # never rolls the state back.
        if newest is not None and newest.row_id >= self._state.row_id:
            self._set(newest, None)
        else:
            self._set(self._state, None)

    def _set(self, new: KillSwitchState, unreadable: str | None) -> None:
        old = self.state
        self._state = new
        self._unreadable = unreadable
        tripped = new.tripped or unreadable is not None
        if tripped != self.is_tripped:
            self.is_tripped = tripped
            for listener in list(self._listeners):
                listener(old, self.state)

    async def watch(self, interval: float = 0.5) -> None:
        """Refresh every ``interval`` seconds until cancelled (a daemon task).

        Reads run in a worker thread so a slow database never stalls the event loop.
        """
        from sqlalchemy.exc import SQLAlchemyError

        from arbot.errors import StoreError

        while True:
            try:
                newest = await asyncio.to_thread(self._read)
            except (SQLAlchemyError, StoreError, OSError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if self._unreadable is None:
                    _log_warning(f"kill switch unreadable, holding it tripped: {first}")
                self._set(self._state, first)
            else:
                self._apply(newest)  # on the loop's thread, like every other change
            await asyncio.sleep(interval)


def _log_warning(message: str) -> None:
    from loguru import logger

    from arbot.redact import redact

    logger.warning(redact(message))
