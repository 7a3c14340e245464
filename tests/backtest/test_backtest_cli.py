"""``arbot backtest`` from the command line: output, report files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backtest_support import book, pair_settings, write_books

from arbot.cli.main import main


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    pair_settings(tmp_path)
    data = write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(99.0, 10.0)], [(100.0, 1.0), (103.0, 10.0)]),
            book("beta", 0, [(101.0, 1.0), (95.0, 10.0)], [(101.2, 10.0)]),
            book("alpha", 1000, [(99.0, 10.0)], [(103.0, 10.0)]),
            book("beta", 1000, [(100.0, 1.0)], [(101.2, 10.0)]),
        ],
    )
    return tmp_path / "arbot.toml", data


def backtest(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["backtest", "-c", str(config), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_summary_and_report_files(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, data = setup
    report = tmp_path / "out" / "report"
    code, out, _ = backtest(capsys, config, "--data", str(data), "--report", str(report), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["opportunities_taken"] == 1
    assert result["pnl_net_quote"] == "1"
    assert result["report"] == str(report)
    for key in (
        "updates",
        "opportunities_seen",
        "opportunities_taken",
        "rejected",
        "fills",
        "legs_unwound",
        "pnl_net_quote",
        "fees_quote",
        "max_drawdown_quote",
        "pnl_gross_quote",
        "turnover_quote",
        "inventory_drift",
    ):
        assert key in result, key
    assert set(result["inventory_drift"]) == {"ABC", "USDT"}
    assert sorted(p.name for p in report.iterdir()) == ["report.html", "summary.json", "trades.csv"]
    trades = (report / "trades.csv").read_text().splitlines()
    assert trades[0] == (
        "time,venue,symbol,side,price,amount,fee,fee_currency,client_order_id,"
        "opportunity_id,purpose"
    )
    assert trades[1:] == [
        "2023-11-14T22:13:20.000Z,alpha,ABC/USDT,buy,100,1,0,ABC,arb0o1l0,1,entry",
        "2023-11-14T22:13:20.000Z,beta,ABC/USDT,sell,101,1,0,USDT,arb0o1l1,1,entry",
    ]
    html = (report / "report.html").read_text()
    assert html.count("<svg") == 4
    for title in ("Realised PnL", "Spread between venues", "Edge distribution", "Inventory"):
        assert title in html


def test_a_table_at_the_end(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, data = setup
    code, out, _ = backtest(capsys, config, "--data", str(data))
    assert code == 0
    assert "opportunities seen" in out
    assert "PnL net (USDT)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/nowhere"], "no such folder"),
        (["--data", "{data}", "--from", "yesterday"], "--from 'yesterday': expected an ISO"),
        (
            ["--data", "{data}", "--from", "2023-11-15", "--to", "2023-11-14"],
            "is not before --to",
        ),
        (["--data", "{data}", "--from", "2024-01-01"], "no book updates of alpha ABC/USDT"),
        (["--data", "{tmp}"], "no book updates"),  # a folder without parts
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    setup: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    config, data = setup
    filled = [a.format(tmp=tmp_path, data=data) for a in args]
    code, _, err = backtest(capsys, config, *filled)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("arbot: error: ")
    assert message in lines[0]


def test_a_backtest_section_for_an_unknown_venue_is_refused(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, data = setup
    config.write_text(config.read_text() + "\n[backtest.venues.gamma]\n")
    code, _, err = backtest(capsys, config, "--data", str(data))
    assert code == 2
    assert "backtest.venues.gamma: not a configured venue" in err


def test_backtest_help_is_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from arbot.cli.lazy import COMMANDS, build

    command = build("backtest", COMMANDS["backtest"])
    assert (command.help or "").splitlines()[0] == COMMANDS["backtest"].help
    assert main(["backtest", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--data", "--from", "--to", "--report", "--seed", "--json"):
        assert option in out


def test_unwinds_are_counted_not_logged_unless_a_log_level_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # beta's book moves away while the order travels: its leg misses, alpha's is unwound.
    config = pair_settings(tmp_path, beta="order_latency = { ms = 5 }")
    data = write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(99.99, 10.0)], [(100.0, 10.0)]),
            book("beta", 0, [(101.0, 10.0)], [(102.0, 10.0)]),
            book("beta", 2, [(98.0, 10.0)], [(100.5, 10.0)]),
        ],
    )
    del config
    path = tmp_path / "arbot.toml"
    code, out, err = backtest(capsys, path, "--data", str(data), "--json")
    assert code == 0
    assert json.loads(out)["legs_unwound"] == 1
    assert "unwinding" not in err
    code = main(["--log-level", "INFO", "backtest", "-c", str(path), "--data", str(data), "--json"])
    assert code == 0
    assert "unwinding" in capsys.readouterr().err
