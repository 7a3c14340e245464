"""``arbot keys`` as an operator uses it: real processes, a real keystore, the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arbot.sim.server import SimServer

PASSPHRASE = "operator passphrase 1"
CANARY_SECRET = "CANARY-cli-secret-7d6c5b4a3f2e1d0c"
CANARY_KEY = "CANARY-cli-key-0a1b2c3d4e5f6a7b"

CONFIG = """
database_url = "sqlite:///arbot.db"
keystore = "config/keys.enc"

[venues.binance]
exchange = "binance"
symbols = ["BTC/USDT"]
{binance_endpoint}

[venues.okx]
exchange = "okx"
symbols = ["BTC/USDT"]
{okx_endpoint}
"""


def project(tmp_path: Path, server: SimServer | None = None) -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    binance = f'endpoint = "{server.venue_url("binance")}"' if server else ""
    okx = f'endpoint = "{server.venue_url("okx")}"' if server else ""
    (tmp_path / "config" / "arbot.toml").write_text(
        CONFIG.format(binance_endpoint=binance, okx_endpoint=okx)
    )
    return tmp_path


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    base["ARBOT_PASSPHRASE"] = PASSPHRASE
    base.update(extra)
    return base


def keys(cwd: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbot", "keys", *args],
        cwd=cwd,
        env=env(**extra),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def secret_json(key: str = CANARY_KEY, secret: str = CANARY_SECRET, **more: str) -> str:
    return json.dumps({"apiKey": key, "secret": secret, **more})


def assert_no_canary(*outputs: str) -> None:
    for output in outputs:
        assert CANARY_SECRET not in output
        assert CANARY_KEY not in output


def test_round_trip_add_list_passwd_remove(tmp_path: Path) -> None:
    cwd = project(tmp_path)
    added = keys(cwd, "add", "binance", "--stdin", stdin=secret_json())
    assert added.returncode == 0, added.stderr
    assert "stored binance key CANA…6a7b" in added.stdout
    keystore = cwd / "config" / "keys.enc"
    assert oct(keystore.stat().st_mode & 0o777) == "0o600"
    assert CANARY_SECRET.encode() not in keystore.read_bytes()

    again = keys(cwd, "add", "binance", "--stdin", stdin=secret_json())
    assert again.returncode == 2
    assert (
        "binance already has a key (CANA…6a7b); rotate it with: arbot keys add binance --replace"
        in again.stderr
    )

    okx = keys(
        cwd,
        "add",
        "okx",
        "--stdin",
        stdin=secret_json("okx-key-1234567890abcdef", "okx-secret-0987654321", password="okx pass"),
    )
    assert okx.returncode == 0, okx.stderr

    listed = keys(cwd, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["venue"] for r in rows] == ["binance", "okx"]
    assert rows[0]["key"] == "CANA…6a7b"
    assert rows[0]["last_check"] is None

    changed = keys(cwd, "passwd", ARBOT_NEW_PASSPHRASE="a brand new passphrase")
    assert changed.returncode == 0, changed.stderr
    stale = keys(cwd, "list")
    assert stale.returncode == 2
    assert "wrong passphrase" in stale.stderr
    fresh = keys(cwd, "list", ARBOT_PASSPHRASE="a brand new passphrase")
    assert fresh.returncode == 0
    assert "binance" in fresh.stdout

    removed = keys(cwd, "remove", "okx", ARBOT_PASSPHRASE="a brand new passphrase")
    assert removed.returncode == 0
    after = json.loads(
        keys(cwd, "list", "--json", ARBOT_PASSPHRASE="a brand new passphrase").stdout
    )
    assert [r["venue"] for r in after] == ["binance"]
    for result in (added, again, okx, listed, changed, stale, fresh, removed):
        assert_no_canary(result.stdout, result.stderr)


def test_passphrase_from_a_file(tmp_path: Path) -> None:
    cwd = project(tmp_path)
    secret_file = tmp_path / "passphrase"
    secret_file.write_text("file passphrase 123\n")
    added = keys(
        cwd,
        "add",
        "binance",
        "--stdin",
        stdin=secret_json(),
        ARBOT_PASSPHRASE_FILE=str(secret_file),
        ARBOT_PASSPHRASE="ignored-because-file",
    )
    assert added.returncode == 0, added.stderr
    listed = keys(cwd, "list", ARBOT_PASSPHRASE="file passphrase 123")
    assert listed.returncode == 0, listed.stderr


def test_wrong_passphrase_and_damaged_files_are_exit_2_and_leave_the_file(tmp_path: Path) -> None:
    cwd = project(tmp_path)
    assert keys(cwd, "add", "binance", "--stdin", stdin=secret_json()).returncode == 0
    keystore = cwd / "config" / "keys.enc"
    original = keystore.read_bytes()

    wrong = keys(cwd, "add", "okx", "--stdin", stdin=secret_json(), ARBOT_PASSPHRASE="wrong one!")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (
        "arbot: error: config/keys.enc: wrong passphrase (or the file's header was altered); "
        "try again, or check ARBOT_PASSPHRASE / ARBOT_PASSPHRASE_FILE"
    )
    assert keystore.read_bytes() == original

    envelope = json.loads(original)
    flipped = bytearray(envelope["ciphertext"].encode())
    flipped[10] = ord("A") if flipped[10] != ord("A") else ord("B")
    envelope["ciphertext"] = flipped.decode()
    keystore.write_text(json.dumps(envelope))
    tampered = keys(cwd, "list")
    assert tampered.returncode == 2
    assert tampered.stderr.startswith("arbot: error: config/keys.enc: ")
    assert len(tampered.stderr.splitlines()) == 1

    keystore.write_bytes(original[: len(original) // 2])
    truncated = keys(cwd, "list")
    assert truncated.returncode == 2
    assert truncated.stderr.strip() == (
        "arbot: error: config/keys.enc: not a valid keystore (truncated or corrupted); "
        "restore it from a backup"
    )
    assert keystore.read_bytes() == original[: len(original) // 2]


def test_bad_input_to_add(tmp_path: Path) -> None:
    cwd = project(tmp_path)
    not_json = keys(cwd, "add", "binance", "--stdin", stdin="apiKey=abc")
    assert not_json.returncode == 2
    assert "stdin: not JSON" in not_json.stderr
    missing = keys(cwd, "add", "binance", "--stdin", stdin=json.dumps({"apiKey": "abc"}))
    assert missing.returncode == 2
    assert "stdin: secret is missing or empty" in missing.stderr
    unknown = keys(cwd, "add", "kraken", "--stdin", stdin=secret_json())
    assert unknown.returncode == 2
    assert "venue 'kraken' is not configured in config/arbot.toml" in unknown.stderr
    no_tty = keys(cwd, "add", "binance")
    assert no_tty.returncode == 2
    assert "pass the key as JSON on standard input with --stdin" in no_tty.stderr
    no_pass = subprocess.run(
        [sys.executable, "-m", "arbot", "keys", "list"],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert no_pass.returncode == 2
    assert (
        "no passphrase: set ARBOT_PASSPHRASE_FILE" in no_pass.stderr
        or "no keystore here" in no_pass.stderr
    )
    assert not (cwd / "config" / "keys.enc").exists()


async def run_keys(cwd: Path, *args: str, stdin: str = "", **extra: str) -> tuple[int, str, str]:
    """``arbot keys`` in a subprocess while this event loop keeps serving the simulator."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arbot",
        "keys",
        *args,
        cwd=cwd,
        env=env(**extra),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("withdraw", [False, True], ids=["trade-only", "withdraw-enabled"])
async def test_check_against_the_simulator(
    frozen_sim: SimServer, tmp_path: Path, withdraw: bool
) -> None:
    cwd = project(tmp_path, frozen_sim)
    for venue in ("binance", "okx"):
        key = frozen_sim.key(venue, withdraw=withdraw)
        payload = {"apiKey": key["apiKey"], "secret": key["secret"]}
        if key["password"]:
            payload["password"] = key["password"]
        code, _, err = await run_keys(cwd, "add", venue, "--stdin", stdin=json.dumps(payload))
        assert code == 0, err
    code, out, err = await run_keys(cwd, "check")
    if withdraw:
        assert code == 1
        assert "binance: the key can withdraw funds; create a trade-only key" in err
        assert "then: arbot keys add binance --replace" in err
        assert "okx: the key can withdraw funds" in err
    else:
        assert code == 0, out + err
        assert "trade_only" in out
    for row in ("binance", "okx"):
        assert row in out
    code, out, _ = await run_keys(cwd, "check", "okx", "--json")
    report = json.loads(out)
    assert report["ok"] is (not withdraw)
    assert [r["venue"] for r in report["keys"]] == ["okx"]
    assert report["keys"][0]["withdraw"] is withdraw
    listed = json.loads((await run_keys(cwd, "list", "--json"))[1])
    assert all(r["last_verdict"] == ("unsafe" if withdraw else "trade_only") for r in listed)
    stored = b"".join(p.read_bytes() for p in cwd.rglob("*") if p.is_file())
    assert b"permission_checks" in stored or (cwd / "arbot.db").exists()
    for venue in ("binance", "okx"):
        assert frozen_sim.venues[venue].withdrawals == []
        key = frozen_sim.key(venue, withdraw=withdraw)
        assert key["secret"] not in out + err
        assert key["secret"].encode() not in stored  # database, config, keystore
        assert key["apiKey"].encode() not in stored
