"""``arbot halt`` and ``arbot resume``: the kill switch from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arbot.cli.main import main
from arbot.engine.kill_switch import KillSwitch
from arbot.store import Store


def config_for(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "arbot.toml"
    path.write_text(f"database_url = {json.dumps(database_url)}\n")
    return str(path)


def state_of(database_url: str) -> tuple[bool, str | None, str | None]:
    with Store(database_url) as store:
        state = KillSwitch(store).state
    return state.tripped, state.reason, state.source


def test_halt_then_resume(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, database_url)
    assert main(["halt", "-c", config]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kill switch TRIPPED: operator;")
    assert "undo with: arbot resume" in out
    assert state_of(database_url) == (True, "operator", "operator")

    assert main(["halt", "-c", config, "--reason", "exchange maintenance"]) == 0
    assert "(it was already tripped)" in capsys.readouterr().out
    assert state_of(database_url) == (True, "exchange maintenance", "operator")

    assert main(["resume", "-c", config]) == 0
    assert capsys.readouterr().out.startswith("kill switch reset: ")
    assert state_of(database_url)[0] is False


def test_json_output(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_for(tmp_path, database_url)
    assert main(["halt", "-c", config, "--reason", "drill", "--json"]) == 0
    halted = json.loads(capsys.readouterr().out)
    assert halted["tripped"] is True
    assert halted["reason"] == "drill"
    assert halted["source"] == "operator"
    assert halted["changed"] is True
    assert halted["at"]
    assert main(["resume", "-c", config, "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert (resumed["tripped"], resumed["changed"]) == (False, True)
    assert main(["resume", "-c", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_the_environment_names_the_database_when_there_is_no_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARBOT_DATABASE_URL", url)
    assert main(["halt"]) == 0
    assert f"database: {url}" in capsys.readouterr().out
    assert state_of(url)[0] is True


def test_a_blank_reason_is_refused(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "-c", config_for(tmp_path, database_url), "--reason", " "]) == 2
    assert "--reason" in capsys.readouterr().err
    assert state_of(database_url)[0] is False


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "arbot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_config_or_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run("halt", "-c", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "arbot: error: nope.toml: file not found; create one with 'arbot init' or pass -c FILE"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('database_url = "sqlite:///no/such/folder/a.db"\n')
    result = run("resume", "-c", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("arbot: error: cannot create database ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("halt", "resume"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Exit codes: 0 done" in out
        assert "not available" not in out
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert "halt " in listing
    assert "Trip the kill switch: stop taking opportunities." in listing
    assert "(not available yet)" not in listing.split("halt", 1)[1].splitlines()[0]
