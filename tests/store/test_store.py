"""The book of record round-trips every table exactly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel, select

from arbot.errors import StoreError
from arbot.store import (
    SCHEMA_VERSION,
    BalanceSnapshotRow,
    FillRow,
    KillSwitchRow,
    OpportunityRow,
    OrderRow,
    PermissionCheckRow,
    RunRow,
    Store,
    describe_database,
)

T0 = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def _rows(run_id: int | None, opportunity_id: int | None, order_id: int | None) -> list[SQLModel]:
    return [
        OrderRow(
            run_id=run_id,
            opportunity_id=opportunity_id,
            client_order_id="arb-1-0",
            exchange_order_id="884422",
            venue="binance",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            time_in_force="IOC",
            amount=Decimal("0.00123"),
            price=Decimal("64123.45"),
            status="filled",
            filled=Decimal("0.00123"),
            average_price=Decimal("64120.000000000001"),
            created_at=T0,
            sent_at=T0 + timedelta(milliseconds=1),
            updated_at=T0 + timedelta(milliseconds=9),
        ),
        FillRow(
            order_id=order_id,
            client_order_id="arb-1-0",
            venue="binance",
            symbol="BTC/USDT",
            side="buy",
            trade_id="t-77",
            amount=Decimal("0.00123"),
            price=Decimal("64120.000000000001"),
            fee=Decimal("0.00000123"),
            fee_currency="BTC",
            is_maker=False,
            executed_at=T0 + timedelta(milliseconds=5),
        ),
        BalanceSnapshotRow(
            run_id=run_id,
            taken_at=T0,
            venue="okx",
            asset="USDT",
            free=Decimal("9999.999999999999999999"),
            used=Decimal("0.1"),
            source="fills",
        ),
        PermissionCheckRow(
            checked_at=T0,
            venue="okx",
            exchange="okx",
            key_id="ab12…9f",
            can_read=True,
            can_trade=True,
            can_withdraw=False,
            can_transfer=None,
            ip_restricted=True,
            verdict="trade_only",
            detail="perm=read_only,trade",
        ),
        KillSwitchRow(at=T0, action="trip", reason="max_daily_loss", source="risk", run_id=run_id),
    ]


def test_every_table_round_trips_exactly(database_url: str) -> None:
    with Store(database_url) as store:
        with store.session() as session:
            run = RunRow(
                mode="paper",
                strategy="cross_exchange",
                arbot_version="0.1.0",
                started_at=T0,
                config={"mode": "paper", "venues": {"okx": {"symbols": ["BTC/USDT"]}}},
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            opportunity = OpportunityRow(
                run_id=run.id,
                created_at=T0,
                strategy="cross_exchange",
                symbols="BTC/USDT",
                venues="binance,okx",
                quote="USDT",
                edge_quote=Decimal("1.234567890123456789"),
                edge_bps=Decimal("7.5"),
                notional_quote=Decimal("78.87"),
                taken=False,
                reason="book_stale",
                legs=[{"venue": "binance", "side": "buy", "amount": "0.00123"}],
                books=[{"venue": "okx", "timestamp_ms": 1764244800123}],
            )
            session.add(opportunity)
            session.flush()
            assert opportunity.id is not None
            order, *others = _rows(run.id, opportunity.id, 0)
            session.add(order)
            session.flush()
            assert order.id is not None
            fill = others[0]
            assert isinstance(fill, FillRow)
            fill.order_id = order.id
            session.add_all(others)
            session.flush()
            originals = [run, opportunity, order, *others]
            assert all(row.id is not None for row in originals)  # type: ignore[attr-defined]
            expected = [row.model_dump() for row in originals]

        with store.session() as session:
            for row, want in zip(originals, expected, strict=True):
                got = session.get(type(row), want["id"])
                assert got is not None
                assert got.model_dump() == want, type(row).__name__
        assert store.row_counts() == {
            "runs": 1,
            "opportunities": 1,
            "orders": 1,
            "fills": 1,
            "balance_snapshots": 1,
            "permission_checks": 1,
            "kill_switch": 1,
        }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        min_value=Decimal("-1e12"),
        max_value=Decimal("1e12"),
        places=18,
    )
)
def test_money_is_stored_without_any_rounding(tmp_path: Path, amount: Decimal) -> None:
    url = f"sqlite:///{tmp_path / 'money.db'}"
    with Store(url) as store:
        with store.session() as session:
            row = BalanceSnapshotRow(venue="v", asset="BTC", free=amount, taken_at=T0)
            session.add(row)
        with store.session() as session:
            got = session.get(BalanceSnapshotRow, row.id)
            assert got is not None
            assert got.free == amount
            assert str(got.free) == str(amount)


def test_times_come_back_as_aware_utc(database_url: str) -> None:
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    with Store(database_url) as store:
        with store.session() as session:
            row = RunRow(mode="live", strategy="s", arbot_version="x", started_at=local)
            session.add(row)
        with store.session() as session:
            got = session.get(RunRow, row.id)
            assert got is not None
            assert got.started_at == local
            assert got.started_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(database_url: str) -> None:
    with (
        Store(database_url) as store,
        pytest.raises(StatementError, match="naive datetime"),
        store.session() as session,
    ):
        session.add(
            RunRow(mode="live", strategy="s", arbot_version="x", started_at=datetime(2026, 1, 1))
        )


def test_client_order_ids_are_unique(database_url: str) -> None:
    with Store(database_url) as store:
        order = _rows(None, None, None)[0]
        fields = order.model_dump(exclude={"id", "run_id", "opportunity_id"})
        with store.session() as session:
            session.add(OrderRow(**fields))
        with pytest.raises(IntegrityError), store.session() as session:
            session.add(OrderRow(**fields))
        with store.session() as session:
            assert len(session.exec(select(OrderRow)).all()) == 1


def test_a_fill_is_recorded_once_per_venue_trade(database_url: str) -> None:
    with Store(database_url) as store:
        fill = _rows(None, None, None)[1].model_dump(exclude={"id", "order_id"})
        with store.session() as session:
            session.add(FillRow(**fill))
        with pytest.raises(IntegrityError), store.session() as session:
            session.add(FillRow(**fill))


def test_schema_is_created_once_and_versioned(database_url: str) -> None:
    with Store(database_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with Store(database_url) as store:  # opening again neither fails nor adds a version row
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT version FROM schema_version")).all()
        assert [r[0] for r in rows] == [SCHEMA_VERSION]


def test_a_newer_schema_is_refused_rather_than_damaged(database_url: str) -> None:
    with Store(database_url) as store, store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO schema_version (version, applied_at, arbot_version) "
                "VALUES (:v, :t, 'future')"
            ),
            {"v": SCHEMA_VERSION + 1, "t": T0},
        )
    with pytest.raises(
        StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer .* upgrade arbot"
    ):
        Store(database_url)


def test_describe_does_not_create_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    info = describe_database(url)
    assert not info.exists
    assert info.schema_version is None
    assert not (tmp_path / "later.db").exists()
    Store(url).close()
    info = describe_database(url)
    assert info.exists
    assert info.schema_version == SCHEMA_VERSION
    assert info.row_counts["orders"] == 0


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"folder .*nowhere does not exist"):
        Store(f"sqlite:///{tmp_path / 'nowhere' / 'arbot.db'}")
    assert not (tmp_path / "nowhere").exists()


def test_unreachable_postgres_is_one_line_without_the_password() -> None:
    url = "postgresql://arbot:Canary-PW-41@127.0.0.1:1/arbot?connect_timeout=2"
    with pytest.raises(StoreError) as info:
        Store(url)
    message = str(info.value)
    assert "Canary-PW-41" not in message
    assert message.startswith(
        "cannot open database postgresql+psycopg://arbot:***@127.0.0.1:1/arbot"
    )
    assert "is PostgreSQL running" in message
    assert len(message.splitlines()) == 1
