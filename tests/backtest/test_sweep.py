"""Parameter sweeps (``arbot backtest --sweep``) on the LINK data: 1 and 2 local workers
and a real Dask ``LocalCluster`` give the same rows; bad sweep files are one line."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backtest_support import book, link_settings, pair_settings, write_books

from arbot.backtest import sweep
from arbot.cli.backtest import parse_time
from arbot.cli.main import main

FROM, TO = "2021-08-20T00:30", "2021-08-20T00:45"  # 900 s of the 7,200
EDGES = [0, 2, 5]
SWEEP = f"""
[grid]
"strategy.params.min_edge_bps" = {EDGES}
"backtest.venues.binance.order_latency.ms" = [0, 50]

[sweep]
seed = 1
"""
KEYS = ("strategy.params.min_edge_bps", "backtest.venues.binance.order_latency.ms")


@pytest.fixture(scope="module")
def link_sweep(link_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The LINK settings (1 bps taker fee, jittered order latency) and the sweep file."""
    folder = tmp_path_factory.mktemp("sweep")
    link_settings(
        folder,
        fee="0.0001",
        extra="""
[backtest.venues.binance]
order_latency = { ms = 0, jitter_ms = 5, distribution = "exponential" }
[backtest.venues.huobi]
order_latency = { ms = 20, jitter_ms = 5 }
""",
    )
    (folder / "sweep.toml").write_text(SWEEP)
    return folder / "arbot.toml", folder / "sweep.toml"


@pytest.fixture(scope="module")
def local_rows(link_data: Path, link_sweep: tuple[Path, Path]) -> list[sweep.Row]:
    """The sweep run through the Python API on two worker processes."""
    from arbot.config import load_settings

    config, file = link_sweep
    points = sweep.plan(load_settings(config), sweep.read_sweep(file))
    return sweep.run_local(
        points,
        link_data,
        2,
        start_ns=parse_time(FROM, "--from"),
        end_ns=parse_time(TO, "--to"),
    )


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backtest", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def as_text(rows: list[sweep.Row]) -> list[dict[str, str]]:
    return [{name: sweep.text(value) for name, value in row.items()} for row in rows]


def test_the_rows_are_the_grid_in_order(local_rows: list[sweep.Row]) -> None:
    assert [list(row) for row in local_rows] == [sweep.columns(KEYS)] * 6
    assert [(row["point"], *(row[key] for key in KEYS)) for row in local_rows] == [
        (1, 0, 0),
        (2, 0, 50),
        (3, 2, 0),
        (4, 2, 50),
        (5, 5, 0),
        (6, 5, 50),
    ]
    assert all(row["opportunities_taken"] > 0 for row in local_rows[:2])


def test_a_higher_minimum_edge_sees_fewer_opportunities(local_rows: list[sweep.Row]) -> None:
    for latency in (0, 50):
        seen = [row["opportunities_seen"] for row in local_rows if row[KEYS[1]] == latency]
        assert len(seen) == len(EDGES)
        assert all(a >= b for a, b in itertools.pairwise(seen)), seen
        assert seen[0] > seen[-1], seen
        taken = [row["opportunities_taken"] for row in local_rows if row[KEYS[1]] == latency]
        assert all(t <= s for t, s in zip(taken, seen, strict=True))


def test_one_worker_from_the_command_line_gives_the_same_rows_and_csv(
    link_data: Path,
    link_sweep: tuple[Path, Path],
    local_rows: list[sweep.Row],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, file = link_sweep
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys,
        *("-c", str(config), "--data", str(link_data), "--from", FROM, "--to", TO),
        *("--sweep", str(file), "--workers", "1", "--report", str(out), "--json"),
    )
    assert code == 0, err
    document = json.loads(stdout)
    assert document["points"] == 6
    assert document["csv"] == str(out / "sweep.csv")
    assert document["rows"] == local_rows
    assert csv_rows(out / "sweep.csv") == as_text(local_rows)
    assert (out / "sweep.csv").read_text().splitlines()[0] == ",".join(sweep.columns(KEYS))


def test_one_point_runs_alone_with_its_rows_figures_and_a_report(
    link_data: Path,
    link_sweep: tuple[Path, Path],
    local_rows: list[sweep.Row],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, file = link_sweep
    out = tmp_path / "point4"
    code, stdout, err = run_cli(
        capsys,
        *("-c", str(config), "--data", str(link_data), "--from", FROM, "--to", TO),
        *("--sweep", str(file), "--point", "4", "--report", str(out), "--json"),
    )
    assert code == 0, err
    summary = json.loads(stdout)
    row = local_rows[3]
    assert (row["point"], row[KEYS[0]], row[KEYS[1]]) == (4, 2, 50)
    assert {name: summary[name] for name in sweep.FIGURES} == {
        name: row[name] for name in sweep.FIGURES
    }
    assert summary["run_id"] > 0  # stored, unlike the sweep's runs
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "summary.json", "trades.csv"]
    code, _, err = run_cli(
        capsys,
        *("-c", str(config), "--data", str(link_data), "--sweep", str(file), "--point", "7"),
    )
    assert code == 2
    assert "--point 7: " in err
    assert "has 6 point(s), numbered 1 to 6" in err


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def test_a_dask_cluster_gives_the_local_rows(
    link_data: Path,
    link_sweep: tuple[Path, Path],
    local_rows: list[sweep.Row],
    cluster: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, file = link_sweep
    address = cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    code, stdout, err = run_cli(
        capsys,
        *("-c", str(config), "--data", link_data.as_uri(), "--from", FROM, "--to", TO),
        *("--sweep", str(file), "--cluster", address, "--report", str(tmp_path), "--json"),
    )
    assert code == 0, err
    assert json.loads(stdout)["rows"] == local_rows
    assert csv_rows(tmp_path / "sweep.csv") == as_text(local_rows)


def test_a_table_at_the_end(
    link_data: Path,
    link_sweep: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, _ = link_sweep
    file = tmp_path / "small.toml"
    file.write_text('[grid]\n"strategy.params.min_edge_bps" = [0, 5]\n')
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli(
        capsys,
        *("-c", str(config), "--data", str(link_data), "--from", FROM, "--to", "2021-08-20T00:32"),
        *("--sweep", str(file)),
    )
    assert code == 0, err
    assert "backtest sweep: 2 points" in stdout
    assert "min_edge_bps" in stdout
    assert "PnL net" in stdout
    assert [row["point"] for row in csv_rows(tmp_path / "sweep.csv")] == ["1", "2"]


# ----- bad input: one line, exit 2 (tiny data; nothing runs unless said) ---------------


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    pair_settings(tmp_path)
    data = write_books(
        tmp_path / "books",
        [
            book("alpha", 0, [(99.0, 10.0)], [(100.0, 1.0), (103.0, 10.0)]),
            book("beta", 0, [(101.0, 1.0), (95.0, 10.0)], [(101.2, 10.0)]),
        ],
    )
    return tmp_path / "arbot.toml", data


GOOD = '[grid]\n"strategy.params.min_edge_bps" = [0, 5]\n'


@pytest.mark.parametrize(
    ("sweep_text", "message"),
    [
        (
            '[grid]\n"strategy.prams.min_edge_bps" = [0]\n',
            "grid: strategy.prams.min_edge_bps: unknown key 'prams' of strategy; expected one "
            "of: name, params, path",
        ),
        ('[grid]\n"risk.max_order" = [1]\n', "unknown key 'max_order' of risk; expected"),
        (
            '[grid]\n"backtest.venues.gamma.order_latency.ms" = [0]\n',
            "'gamma' is not a configured venue (configured: alpha, beta)",
        ),
        ('[grid]\n"database_url" = ["sqlite://"]\n', "database_url: not swept"),
        (
            '[grid]\n"risk.max_order_notional.x" = [1]\n',
            "risk.max_order_notional is a single value, not a table",
        ),
        (
            '[grid]\n"backtest.venues.alpha.order_latency.ms" = [0, -5]\n',
            "point 2 (backtest.venues.alpha.order_latency.ms=-5): "
            "backtest.venues.alpha.order_latency.ms: input should be greater than or equal to 0",
        ),
        (
            '[grid]\n"strategy.params.min_edge_bps" = [0, "lots"]\n',
            "point 2 (strategy.params.min_edge_bps=lots): ",
        ),
        ('[grid]\n"strategy.params.no_such_param" = [1]\n', "point 1 (strategy.params.no_such"),
        ("[sweep]\nworkers = 2\n", "[grid] lists no settings to vary"),
        ("", "[grid] lists no settings to vary"),
        ('[grid]\n"risk.use_fok" = []\n', "grid: risk.use_fok: the list is empty"),
        ('[grid]\n"risk.use_fok" = true\n', "grid: risk.use_fok: expected a list of values"),
        ('[grid]\n"risk.use_fok" = [true, true]\n', "true is listed more than once"),
        (GOOD + "[sweep]\nthreads = 2\n", "sweep.threads: unknown key"),
        (GOOD + "[sweep]\nworkers = -1\n", "sweep.workers: expected a whole number >= 0"),
        (GOOD + "[grids]\n", "unknown table [grids]"),
        ('[grid\n"risk.use_fok" = [true]\n', "invalid TOML"),
        (GOOD + "[sweep]\nseed = 1\n[grid.backtest]\nseed = [1, 2]\n", "varies the seed"),
    ],
)
def test_a_bad_sweep_file_is_one_line(
    tiny: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sweep_text: str,
    message: str,
) -> None:
    config, data = tiny
    file = tmp_path / "sweep.toml"
    file.write_text(sweep_text)
    code, _, err = run_cli(capsys, "-c", str(config), "--data", str(data), "--sweep", str(file))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("arbot: error: ")
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "--workers runs a sweep: add --sweep FILE"),
        (["--cluster", "tcp://127.0.0.1:1"], "--cluster runs a sweep: add --sweep FILE"),
        (
            ["--sweep", "{sweep}", "--workers", "1", "--cluster", "tcp://127.0.0.1:1"],
            "--workers is for local sweeps",
        ),
        (["--sweep", "{tmp}/nowhere.toml"], "nowhere.toml: file not found"),
        (["--point", "2"], "--point N picks one point of a sweep to run alone"),
        (["--sweep", "{sweep}", "--point", "1", "--workers", "2"], "--point N picks one point"),
        (["--sweep", "{sweep}", "--cluster", "nonsense"], "nonsense: not a scheduler address"),
        (
            ["--sweep", "{sweep}", "--cluster", "tcp://127.0.0.1:1", "--data", "s3://b/books"],
            "s3://b/books: a dataset is a folder; give its path or a file:// URL",
        ),
    ],
)
def test_bad_sweep_options_are_one_line(
    tiny: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    config, data = tiny
    file = tmp_path / "sweep.toml"
    file.write_text(GOOD)
    filled = [a.format(tmp=tmp_path, sweep=file) for a in args]
    code, _, err = run_cli(capsys, "-c", str(config), "--data", str(data), *filled)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]


def test_without_distributed_the_cluster_option_says_what_to_install(
    tiny: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, data = tiny
    file = tmp_path / "sweep.toml"
    file.write_text(GOOD)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    code, _, err = run_cli(
        capsys,
        *("-c", str(config), "--data", str(data), "--sweep", str(file)),
        *("--cluster", "tcp://127.0.0.1:1"),
    )
    assert code == 2
    assert err.strip() == (
        "arbot: error: --cluster needs Dask distributed, which is not installed; "
        "install it with: pip install 'arbot[cluster]'"
    )


def test_a_point_that_fails_in_a_worker_is_one_line(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, data = tiny
    file = tmp_path / "sweep.toml"
    file.write_text('[grid]\n"strategy.params.min_edge_bps" = [0]\n')
    code, _, err = run_cli(
        capsys,
        *("-c", str(config), "--data", str(data), "--from", "2030-01-01"),
        *("--sweep", str(file), "--workers", "1", "--report", str(tmp_path / "out")),
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("arbot: error: point 1 (strategy.params.min_edge_bps=0): ")
    assert "no book updates of alpha ABC/USDT" in lines[0]
    assert not (tmp_path / "out" / "sweep.csv").exists()
