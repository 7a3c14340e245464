"""The command line as a user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arbot import __version__
from arbot.cli.main import main
from arbot.store import SCHEMA_VERSION, Store


def arbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "arbot", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = arbot("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"arbot {__version__}"


def test_help_lists_every_command_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    from arbot.cli.lazy import COMMANDS

    for name in COMMANDS:
        assert f"\n  {name} " in out, name
    assert "Exit codes" in out


@pytest.mark.parametrize(
    "command", [["init"], ["config", "check"], ["db", "info"], ["run"], ["keys"]]
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "Usage: arbot" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["status"], "(default: [ops] port)"),
        (["run"], "default: [mode]"),
        (["keys", "add"], "as in [venues.NAME]"),
        (["backtest"], "arbot[cluster]"),
    ],
)
def test_settings_in_brackets_survive_the_help_renderer(
    command: list[str], shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert shown in text


def test_init_then_check_as_a_new_user_would(tmp_path: Path) -> None:
    result = arbot("init", "mybot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mybot" / "config" / "arbot.toml").is_file()
    assert (tmp_path / "mybot" / "strategies").is_dir()
    check = arbot("config", "check", "-c", "mybot/config/arbot.toml", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "valid (mode paper, 2 venue(s), strategy cross_exchange)" in check.stdout
    assert "[venues.okx]" in check.stdout


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert arbot("init", "mybot", cwd=tmp_path).returncode == 0
    config = tmp_path / "mybot" / "config" / "arbot.toml"
    config.write_text("# my edits\n")
    again = arbot("init", "mybot", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "arbot: error: mybot/config/arbot.toml: already exists; pass --force to overwrite it"
    )
    assert config.read_text() == "# my edits\n"
    forced = arbot("init", "mybot", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert "[venues.binance]" in config.read_text()


def test_init_into_a_file_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    result = arbot("init", "taken", cwd=tmp_path)
    assert result.returncode == 2
    assert "taken: exists and is not a folder" in result.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('colour = "blue"\n', "arbot.toml: colour: unknown key"),
        (
            '[risk]\nmax_book_age_ms = "soon"\n',
            "arbot.toml: risk.max_book_age_ms: input should be a valid integer",
        ),
        ('mode = "yolo"\n', "arbot.toml: mode: input should be 'paper' or 'live' (got 'yolo')"),
        ("mode = \n", "arbot.toml: invalid TOML"),
        (None, "arbot.toml: file not found; create one with 'arbot init' or pass -c FILE"),
    ],
    ids=["unknown-key", "wrong-type", "bad-mode", "invalid-toml", "missing-file"],
)
def test_bad_config_is_exit_2_and_one_line(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    if content is not None:
        (tmp_path / "arbot.toml").write_text(content)
    result = arbot("config", "check", "-c", "arbot.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("arbot: error: arbot.toml: ")
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_default_config_path_is_config_arbot_toml(tmp_path: Path) -> None:
    result = arbot("config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "config/arbot.toml: file not found" in result.stderr
    assert arbot("init", cwd=tmp_path).returncode == 0
    assert arbot("config", "check", cwd=tmp_path).returncode == 0


def test_config_check_json_masks_the_database_password(tmp_path: Path) -> None:
    arbot("init", cwd=tmp_path)
    env = {
        "ARBOT_DATABASE_URL": "postgresql+psycopg://bot:Canary-PW-17@db:5432/arbot",
        "ARBOT_RISK__MAX_BOOK_AGE_MS": "300",
    }
    result = arbot("config", "check", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["database_url"] == "postgresql+psycopg://bot:***@db:5432/arbot"
    assert data["risk"]["max_book_age_ms"] == 300
    assert "Canary-PW-17" not in result.stdout + result.stderr
    human = arbot("config", "check", cwd=tmp_path, env=env)
    assert "Canary-PW-17" not in human.stdout + human.stderr


def test_db_info_reports_location_version_and_counts(tmp_path: Path) -> None:
    arbot("init", cwd=tmp_path)
    before = arbot("db", "info", "--json", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    info = json.loads(before.stdout)
    assert info["exists"] is False
    assert info["location"] == str(tmp_path / "arbot.db")
    assert not (tmp_path / "arbot.db").exists()

    Store(f"sqlite:///{tmp_path / 'arbot.db'}").close()
    after = arbot("db", "info", "--json", cwd=tmp_path)
    info = json.loads(after.stdout)
    assert info["exists"] is True
    assert info["schema_version"] == info["expected_schema_version"]
    assert info["row_counts"]["orders"] == 0
    table = arbot("db", "info", cwd=tmp_path)
    assert "permission_checks" in table.stdout
    assert f"schema:   version {SCHEMA_VERSION}" in table.stdout


def test_db_info_on_unreachable_postgres_is_one_line(tmp_path: Path) -> None:
    result = arbot(
        "db",
        "info",
        "--database-url",
        "postgresql://bot:Canary-PW-29@127.0.0.1:1/arbot?connect_timeout=2",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "Canary-PW-29" not in result.stderr
    assert "cannot open database" in result.stderr


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = arbot("config", "check", "--colour", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_lazy_command_table_matches_the_real_commands() -> None:
    from arbot.cli.lazy import COMMANDS, build

    for name, entry in COMMANDS.items():
        command = build(name, entry)
        text = (command.help or "").strip().splitlines()[0]
        assert text == entry.help, name
