"""``arbot report`` reads the book of record: figures, JSON, an HTML page with plots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from arbot.cli.main import main
from arbot.store import FillRow, OpportunityRow, OrderRow, RunRow, Store

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def populate(url: str) -> None:
    with Store(url) as store, store.session() as session:
        run = RunRow(mode="paper", strategy="cross_exchange", arbot_version="x", started_at=T0)
        session.add(run)
        session.flush()
        outcomes = [("filled", "1.5"), ("filled", "2.25"), ("unwound", "-0.75"), (None, None)]
        for i, (outcome, pnl) in enumerate(outcomes):
            opportunity = OpportunityRow(
                run_id=run.id,
                created_at=T0 + timedelta(minutes=i),
                strategy="cross_exchange",
                symbols="BTC/USDT",
                venues="binance,okx",
                quote="USDT",
                edge_quote=Decimal("1"),
                edge_bps=Decimal(5 + i),
                notional_quote=Decimal("100"),
                taken=outcome is not None,
                reason=None if outcome else "stale_book",
                outcome=outcome,
                realized_pnl_quote=None if pnl is None else Decimal(pnl),
            )
            session.add(opportunity)
            session.flush()
            if outcome is None:
                continue
            order = OrderRow(
                run_id=run.id,
                opportunity_id=opportunity.id,
                client_order_id=f"arb{i}",
                venue="binance",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                time_in_force="IOC",
                amount=Decimal("0.01"),
                price=Decimal("50000"),
                status="filled",
                filled=Decimal("0.01"),
            )
            session.add(order)
            session.flush()
            session.add(
                FillRow(
                    order_id=order.id,
                    client_order_id=order.client_order_id,
                    venue="binance",
                    symbol="BTC/USDT",
                    side="buy",
                    trade_id=str(i),
                    amount=Decimal("0.01"),
                    price=Decimal("50000"),
                    fee=Decimal("0.5"),
                    fee_currency="USDT",
                    executed_at=T0 + timedelta(minutes=i),
                )
            )


def test_report_figures_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'arbot.db'}"
    populate(url)
    page = tmp_path / "report.html"
    assert main(["report", "--database-url", url, "--json", "--html", str(page)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["opportunities_seen"] == 4
    assert data["opportunities_taken"] == 3
    assert data["rejected"] == {"stale_book": 1}
    assert data["outcomes"] == {"filled": 2, "unwound": 1}
    assert data["pnl"] == {"USDT": "3.00"}
    assert data["fees"] == {"USDT": "1.5"}
    assert data["turnover"] == {"USDT": "1500.00"}
    assert data["orders"] == {"filled": 3}
    assert data["fills"] == 3
    html = page.read_text()
    assert html.count("<svg") == 2
    assert "<polyline" in html  # the PnL line
    assert html.count("<rect") >= 4  # one bar per distinct edge

    assert main(["report", "--database-url", url, "--since", "2026-11-27T12:02"]) == 0
    table = capsys.readouterr().out
    assert "opportunities seen" in table
    assert main(["report", "--database-url", url, "--since", "2026-11-27T12:02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["opportunities_seen"] == 2


def test_bad_since_and_missing_database_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'arbot.db'}"
    populate(url)
    assert main(["report", "--database-url", url, "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--since 'yesterday': expected an ISO date-time" in err
    assert main(["report", "--database-url", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no database yet" in capsys.readouterr().err
