"""The tables of the book of record.

Money columns are :class:`~arbot.store._types.ExactDecimal` and times are aware UTC
(:class:`~arbot.store._types.UTCDateTime`) on every backend. No column holds a secret:
keys appear only as a masked id.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from arbot.store._types import ExactDecimal, UTCDateTime, utcnow


class SchemaVersionRow(SQLModel, table=True):
    """One row per schema version applied; the highest is the database's version."""

    __tablename__ = "schema_version"

    version: int = Field(primary_key=True)
    applied_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    arbot_version: str


class RunRow(SQLModel, table=True):
    """One start of the daemon, one backtest, or one demo."""

    __tablename__ = "runs"

    id: int | None = Field(default=None, primary_key=True)
    mode: str = Field(index=True)  # paper | live | backtest
    status: str = "running"  # running | finished | failed | interrupted
    strategy: str
    arbot_version: str
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # masked settings


class OpportunityRow(SQLModel, table=True):
    """Every opportunity a strategy proposed, taken or not, with the reason."""

    __tablename__ = "opportunities"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="runs.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    strategy: str
    symbols: str  # comma-separated, for filtering without JSON functions
    venues: str
    quote: str
    edge_quote: Decimal = Field(sa_type=ExactDecimal)
    edge_bps: Decimal = Field(sa_type=ExactDecimal)
    notional_quote: Decimal = Field(sa_type=ExactDecimal)
    taken: bool = Field(index=True)
    reason: str | None = None  # why it was rejected (risk check name), None when taken
    outcome: str | None = None  # filled | unwound | stranded | failed, once executed
    realized_pnl_quote: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    legs: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    books: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class OrderRow(SQLModel, table=True):
    """The order journal: written as ``pending`` before the order is sent."""

    __tablename__ = "orders"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="runs.id", index=True)
    opportunity_id: int | None = Field(default=None, foreign_key="opportunities.id", index=True)
    client_order_id: str = Field(unique=True, index=True)
    exchange_order_id: str | None = None
    venue: str = Field(index=True)
    symbol: str
    side: str
    type: str
    time_in_force: str
    purpose: str = "entry"  # entry | unwind
    amount: Decimal = Field(sa_type=ExactDecimal)
    price: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    status: str = Field(default="pending", index=True)
    filled: Decimal = Field(default=Decimal(0), sa_type=ExactDecimal)
    average_price: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FillRow(SQLModel, table=True):
    """One execution reported by a venue; ``(venue, trade_id)`` is unique."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("venue", "trade_id", name="uq_fills_venue_trade"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    client_order_id: str = Field(index=True)
    venue: str
    symbol: str
    side: str
    trade_id: str
    amount: Decimal = Field(sa_type=ExactDecimal)
    price: Decimal = Field(sa_type=ExactDecimal)
    fee: Decimal = Field(sa_type=ExactDecimal)
    fee_currency: str
    is_maker: bool = False
    executed_at: datetime = Field(sa_type=UTCDateTime, index=True)


class BalanceSnapshotRow(SQLModel, table=True):
    """Holdings of one asset on one venue at one moment."""

    __tablename__ = "balance_snapshots"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="runs.id", index=True)
    taken_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    venue: str
    asset: str
    free: Decimal = Field(sa_type=ExactDecimal)
    used: Decimal = Field(default=Decimal(0), sa_type=ExactDecimal)
    source: str = "exchange"  # exchange | fills | config


class PermissionCheckRow(SQLModel, table=True):
    """The outcome of probing one key's permissions. ``None`` means the venue did not say."""

    __tablename__ = "permission_checks"

    id: int | None = Field(default=None, primary_key=True)
    checked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    venue: str = Field(index=True)
    exchange: str
    key_id: str  # masked, e.g. 'ab12…9f'
    can_read: bool | None = None
    can_trade: bool | None = None
    can_withdraw: bool | None = None
    can_transfer: bool | None = None
    ip_restricted: bool | None = None
    verdict: str  # trade_only | unsafe | unverified | error
    detail: str = ""


class KillSwitchRow(SQLModel, table=True):
    """Every trip and reset of the kill switch; the newest row is its state.

    Written by the risk engine (a loss or failure limit) and by ``arbot halt`` /
    ``arbot resume`` from another process; daemons sharing the database all obey it.
    """

    __tablename__ = "kill_switch"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    action: str  # trip | reset
    reason: str  # e.g. max_daily_loss, max_consecutive_failures, operator
    source: str = "risk"  # risk | operator
    run_id: int | None = Field(default=None, foreign_key="runs.id")


ALL_TABLES: tuple[type[SQLModel], ...] = (
    SchemaVersionRow,
    RunRow,
    OpportunityRow,
    OrderRow,
    FillRow,
    BalanceSnapshotRow,
    PermissionCheckRow,
    KillSwitchRow,
)
