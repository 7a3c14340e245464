"""The backtest on real data (Binance and Huobi LINK/USDT, one snapshot a second on both),
checked against counts computed independently from the raw CSV files."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from backtest_support import link_csv_tops, link_settings

from arbot.backtest.runner import Backtest
from arbot.cli.main import main
from arbot.store import Store


def crossing_seconds(fee: Decimal) -> int:
    """Seconds where one venue's best bid beats the other's best ask after a taker fee
    on both legs, strictly: bid x (1 - fee) > ask x (1 + fee)."""
    count = 0
    for venues in link_csv_tops().values():
        (bnc_bid, bnc_ask), (hb_bid, hb_ask) = (
            venues["orderbook_bnc.csv"],
            venues["orderbook_hb.csv"],
        )
        keep, pay = 1 - fee, 1 + fee
        if bnc_bid * keep > hb_ask * pay or hb_bid * keep > bnc_ask * pay:
            count += 1
    return count


def test_zero_fees_see_every_crossing_second(link_data: Path, tmp_path: Path) -> None:
    expected = crossing_seconds(Decimal(0))
    assert expected == 1339  # the data's README says 670 + 669
    result = Backtest(link_settings(tmp_path), link_data).run()
    s = result.summary
    assert s["updates"] == 14_400
    assert s["moments"] == 7_200  # both venues' snapshots of a second are one moment
    assert s["opportunities_seen"] == expected
    assert s["opportunities_taken"] == expected  # ample balances and limits
    assert s["outcomes"] == {"filled": expected}
    assert s["rejected"] == {}
    assert s["fees_quote"] == "0"
    assert s["pnl_net_quote"] == s["pnl_gross_quote"]
    assert Decimal(s["pnl_net_quote"]) > 0
    assert s["max_drawdown_quote"] == "0"  # every trade crosses: realised PnL only rises


def test_taker_fees_drop_the_opportunities_as_a_fee_inclusive_count_says(
    link_data: Path, tmp_path: Path
) -> None:
    fee = Decimal("0.0001")
    expected = crossing_seconds(fee)
    assert 0 < expected < crossing_seconds(Decimal(0))
    result = Backtest(link_settings(tmp_path, fee=str(fee)), link_data).run()
    s = result.summary
    assert s["opportunities_seen"] == expected
    assert s["opportunities_taken"] == expected
    assert Decimal(s["fees_quote"]) > 0
    assert Decimal(s["pnl_gross_quote"]) == Decimal(s["pnl_net_quote"]) + Decimal(s["fees_quote"])
    assert Decimal(s["pnl_net_quote"]) > 0  # min_edge_bps = 0 is after fees


def test_same_inputs_and_seed_give_byte_identical_results(link_data: Path, tmp_path: Path) -> None:
    # Jittered latencies exercise the seeded draws; both runs share one store.
    extra = """
[backtest.venues.binance]
data_latency = { ms = 20, jitter_ms = 30, distribution = "exponential" }
order_latency = { ms = 5, jitter_ms = 10 }
[backtest.venues.huobi]
data_latency = { ms = 40, jitter_ms = 10, distribution = "normal" }
order_latency = { ms = 15, jitter_ms = 5 }
"""
    settings = link_settings(tmp_path, fee="0.00005", extra=extra)
    window = {"start_ns": 1_629_417_600 * 10**9, "end_ns": (1_629_417_600 + 1800) * 10**9}
    outputs = []
    for run, seed in ((1, 7), (2, 7), (3, 8)):
        folder = tmp_path / f"run{run}"
        result = Backtest(settings, link_data, seed=seed, report=folder, **window).run()
        assert result.summary["opportunities_taken"] > 10
        outputs.append(
            {
                name: (folder / name).read_bytes()
                for name in ("summary.json", "trades.csv", "report.html")
            }
        )
    assert outputs[0] == outputs[1]
    assert outputs[0]["trades.csv"] != outputs[2]["trades.csv"]  # another seed, other draws


def test_the_run_is_stored_in_the_store(link_data: Path, tmp_path: Path) -> None:
    settings = link_settings(tmp_path, fee="0.0001")
    result = Backtest(settings, link_data).run()
    with Store(settings.database_url) as store:
        from arbot.engine.journal import Journal

        journal = Journal(store, result.run_id)
        opportunities = journal.opportunities(run_id=result.run_id)
        orders = journal.orders(run_id=result.run_id)
        fills = journal.fills(run_id=result.run_id)
        with store.engine.connect() as connection:
            from sqlalchemy import text

            run = connection.execute(
                text("SELECT mode, status, strategy FROM runs WHERE id = :id"),
                {"id": result.run_id},
            ).one()
    assert tuple(run) == ("backtest", "finished", "cross_exchange")
    s = result.summary
    assert len(opportunities) == s["opportunities_seen"]
    assert all(o.taken and o.outcome == "filled" for o in opportunities)
    assert sum((o.realised_pnl_quote or 0 for o in opportunities), Decimal(0)) == Decimal(
        s["pnl_net_quote"]
    )
    assert len(orders) == s["orders"]
    assert len(fills) == s["fills"]
    # client order ids carry the store's run and opportunity row ids, as the daemon's do
    for entry in orders:
        assert entry.order.client_order_id.startswith(
            f"arb{result.run_id:x}o{entry.opportunity_id:x}"
        )
        assert entry.order.status.value == "filled"
    assert {f.client_order_id for f in fills} <= {e.order.client_order_id for e in orders}


def test_cli_replays_the_link_set_with_a_report(
    link_data: Path, tmp_path: Path, capsys: object
) -> None:
    link_settings(tmp_path, fee="0.0001")
    report = tmp_path / "report"
    code = main(
        [
            "backtest",
            "-c",
            str(tmp_path / "arbot.toml"),
            "--data",
            str(link_data),
            "--from",
            "2021-08-20T00:30",
            "--to",
            "2021-08-20 01:00:00+00:00",
            "--report",
            str(report),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert out["updates"] == 2 * 1800
    assert out["first"] == "2021-08-20T00:30:00.000Z"
    assert out["last"] == "2021-08-20T00:59:59.000Z"
    assert out["run_id"] >= 1
    summary = json.loads((report / "summary.json").read_text())
    assert summary == {k: v for k, v in out.items() if k not in ("run_id", "database", "report")}
    trades = (report / "trades.csv").read_text().splitlines()
    assert len(trades) == 1 + summary["fills"]
    html = (report / "report.html").read_text()
    assert html.count("<svg") == 4


def test_the_documented_example_config_gives_the_documented_results(
    link_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/backtest.md quotes these numbers for config/backtest-link.example.toml."""
    example = Path(__file__).resolve().parents[2] / "config" / "backtest-link.example.toml"
    monkeypatch.chdir(tmp_path)  # its database is relative to where arbot runs
    runs = {}
    for name, text in (
        ("as shipped", example.read_text()),
        (
            "huobi 40 ms late",
            example.read_text().replace(
                "[backtest.venues.huobi]\n", "[backtest.venues.huobi]\ndata_latency = { ms = 40 }\n"
            ),
        ),
    ):
        config = tmp_path / f"{len(runs)}.toml"
        config.write_text(text)
        assert main(["backtest", "-c", str(config), "--data", str(link_data), "--json"]) == 0
        runs[name] = json.loads(capsys.readouterr().out)
    shipped, late = runs["as shipped"], runs["huobi 40 ms late"]
    assert (shipped["opportunities_taken"], shipped["outcomes"]) == (7, {"filled": 7})
    assert Decimal(shipped["pnl_net_quote"]).quantize(Decimal("0.01")) == Decimal("1.16")
    assert (late["opportunities_taken"], late["outcomes"]) == (121, {"filled": 7, "unwound": 114})
    assert Decimal(late["pnl_net_quote"]).quantize(Decimal("1")) == Decimal("-69")


def test_the_tutorials_scaffolded_plugin_backtests_as_documented_screened_or_not(
    link_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/strategies.md, section 6: the scaffold takes 31 opportunities, all filled; its
    screen changes the speed only."""
    import re

    from arbot.config import load_settings

    monkeypatch.chdir(tmp_path)
    assert main(["strategy", "new", "spread_watch"]) == 0
    doc = (Path(__file__).resolve().parents[2] / "docs" / "strategies.md").read_text()
    section = doc[doc.index("## 6. Backtesting your plugin") :]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found is not None
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "backtest.toml").write_text(found.group(1))
    settings = load_settings(tmp_path / "config" / "backtest.toml")
    summaries = []
    for screen in (True, False):
        backtest = Backtest(settings, link_data, screen=screen)
        summaries.append(backtest.run().summary)
        assert backtest._source.screened is screen
    assert summaries[0] == summaries[1]
    assert (summaries[0]["opportunities_taken"], summaries[0]["outcomes"]) == (31, {"filled": 31})
