"""``arbot sim`` as a user runs it: a real process, its first line, its control API, bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "arbot", "sim", "--port", "0", "--json"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first, process.stderr.read() if process.stderr else ""
        yield process, json.loads(first)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return json.loads(response.read())


def test_default_simulator_contract(
    sim_process: tuple[subprocess.Popen[str], dict[str, object]],
) -> None:
    process, info = sim_process
    port = info["port"]
    assert isinstance(port, int)
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # listening as soon as the first line is printed
    venues = {v["venue"]: v for v in info["venues"]}  # type: ignore[attr-defined]
    assert venues["binance"]["protocol"] == "binance"
    assert venues["okx"]["protocol"] == "okx"
    for entry in venues.values():
        assert {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(entry["symbols"])
        assert len(entry["symbols"]) >= 5
    assert venues["binance"]["urls"]["ws"] == f"ws://127.0.0.1:{port}/binance/stream/ws"
    assert venues["okx"]["urls"]["ws"] == f"ws://127.0.0.1:{port}/okx/ws/v5"

    keys = get(f"http://127.0.0.1:{port}/_sim/keys")
    assert isinstance(keys, list)
    for venue in ("binance", "okx"):
        mine = [k for k in keys if k["venue"] == venue]
        assert {k["protocol"] for k in mine} == {venue}
        assert any("withdraw" not in k["permissions"] and "trade" in k["permissions"] for k in mine)
        assert any("withdraw" in k["permissions"] for k in mine)
        for key in mine:
            assert set(key) >= {"venue", "protocol", "apiKey", "secret", "password", "permissions"}
            assert (key["password"] is not None) == (venue == "okx")
    assert get(f"http://127.0.0.1:{port}/_sim/orders?venue=binance") == []
    assert get(f"http://127.0.0.1:{port}/_sim/withdrawals") == []
    depth = get(f"http://127.0.0.1:{port}/binance/api/v3/depth?symbol=BTCUSDT&limit=5")
    assert isinstance(depth, dict)
    assert len(depth["bids"]) == 5

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def run_sim(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbot", "sim", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_sim(tmp_path, "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"arbot: error: port {port} on 127.0.0.1 is in use; pass --port 0 for a free one "
        "or stop the other process"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("seed = \n", "sim.toml: invalid TOML"),
        (
            '[venues.x]\nprotocol = "kraken"\nsymbols = ["BTC/USDT"]\n',
            "sim.toml: venues.x.protocol: unknown venue protocol 'kraken'; "
            "use one of: binance, okx",
        ),
        (
            '[venues.x]\nprotocol = "okx"\nsymbols = ["BTC/USDT"]\ncolour = 1\n',
            "sim.toml: venues.x.colour: unknown key",
        ),
    ],
    ids=["malformed", "unknown-protocol", "unknown-key"],
)
def test_bad_simulator_config_is_exit_2(tmp_path: Path, config: str, needle: str) -> None:
    (tmp_path / "sim.toml").write_text(config)
    result = run_sim(tmp_path, "-c", "sim.toml", "--port", "0")
    assert result.returncode == 2
    assert needle in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr


def test_replay_file_of_no_known_format_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("these are not order books\n")
    result = run_sim(tmp_path, "--replay", "notes.txt", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("arbot: error: notes.txt: not a known replay format; expected ")
