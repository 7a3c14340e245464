"""``arbot strategy list|show|new`` as an author meets them: scaffold, test, list, show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arbot.cli.main import main

REPO = Path(__file__).resolve().parents[2]

GOOD = '''
from pydantic import Field

from arbot.strategy import Strategy, StrategyParams


class Params(StrategyParams):
    min_edge_bps: float = Field(default=5.0, ge=0, description="Smallest edge, in bps.")
    venue: str = Field(description="Venue to trade on.")
    limits: dict[str, int] = Field(default_factory=lambda: {"BTC": 2}, description="Caps.")


class Good(Strategy):
    """Does nothing, well."""

    name = "good"
    Params = Params

    def on_book(self, update, ctx):
        return []
'''


def arbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
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


def pytest_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARBOT_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_scaffolded_plugin_passes_its_tests_is_listed_and_shown(tmp_path: Path) -> None:
    new = arbot("strategy", "new", "my_edge", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    plugin = tmp_path / "strategies" / "my_edge.py"
    assert (tmp_path / "strategies" / "test_my_edge.py").is_file()
    assert new.stdout.splitlines() == [
        "wrote strategies/my_edge.py",
        "wrote strategies/test_my_edge.py",
        "next: python -m pytest strategies/test_my_edge.py, then arbot strategy show my_edge",
    ]
    assert "class MyEdge(Strategy):" in plugin.read_text()

    # The generated tests pass unchanged, the way the author is told to run them...
    run = pytest_in(tmp_path, "strategies/test_my_edge.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 passed" in run.stdout
    # ... and they test something: a plugin that never proposes fails them.
    plugin.write_text(
        plugin.read_text().replace(
            "        if bid_price <= ask_price:\n", "        if bid_price > 0:\n", 1
        )
    )
    broken = pytest_in(tmp_path, "strategies/test_my_edge.py")
    assert broken.returncode == 1
    assert "3 failed, 3 passed" in broken.stdout
    arbot("strategy", "new", "my_edge", "--force", cwd=tmp_path)

    listed = arbot("strategy", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["strategies"]}
    assert rows["my_edge"]["source"] == "strategies/my_edge.py"
    assert rows["my_edge"]["description"] == (
        "Buy one venue's best ask and sell another's best bid when the gap beats the fees."
    )
    human = arbot("strategy", "list", cwd=tmp_path)
    assert "my_edge  " in human.stdout
    assert "strategies/my_edge.py" in human.stdout

    shown = arbot("strategy", "show", "my_edge", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    params = {p["name"]: p for p in json.loads(shown.stdout)["params"]}
    assert params["min_edge_bps"]["default"] == "10"
    assert params["max_amount"]["default"] == "0.01"
    assert params["symbols"]["default"] == []
    assert all(p["description"] for p in params.values())


def test_the_scaffold_is_lint_clean_and_typed(tmp_path: Path) -> None:
    assert main(["strategy", "new", "lint_me", "--path", str(tmp_path)]) == 0
    files = [str(tmp_path / "lint_me.py"), str(tmp_path / "test_lint_me.py")]
    bin_dir = Path(sys.executable).parent
    config = str(REPO / "pyproject.toml")
    for tool in (
        [str(bin_dir / "ruff"), "check", "--config", config, "--ignore", "I001"],
        [str(bin_dir / "ruff"), "format", "--config", config, "--check"],
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental"],
    ):
        result = subprocess.run(
            [*tool, *files], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, (tool, result.stdout, result.stderr)


def test_new_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert arbot("strategy", "new", "edge", cwd=tmp_path).returncode == 0
    plugin = tmp_path / "strategies" / "edge.py"
    plugin.write_text("# my edits\n")
    again = arbot("strategy", "new", "edge", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        "arbot: error: strategies/edge.py, strategies/test_edge.py: already exists; pass "
        "--force to overwrite"
    ]
    assert plugin.read_text() == "# my edits\n"
    forced = arbot("strategy", "new", "edge", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert 'name = "edge"' in plugin.read_text()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("MyEdge", "not a valid strategy name"),
        ("my-edge", "not a valid strategy name"),
        ("2fast", "not a valid strategy name"),
        ("class", "not a valid strategy name"),
        ("test_edge", "names of test files are not plugins"),
        ("json", "would shadow the Python module json"),
    ],
)
def test_new_rejects_names_that_cannot_be_plugins(
    tmp_path: Path, name: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["strategy", "new", name, "--path", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"arbot: error: {name!r}: {reason}")
    assert list(tmp_path.iterdir()) == []


def test_new_and_list_use_the_configured_folder(tmp_path: Path) -> None:
    (tmp_path / "bot.toml").write_text('[strategy]\npath = "plugins"\n')
    result = arbot("strategy", "new", "edge", "-c", "bot.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "plugins" / "edge.py").is_file()
    listed = arbot("strategy", "list", "-c", "bot.toml", "--json", cwd=tmp_path)
    data = json.loads(listed.stdout)
    assert data["folder"] == "plugins"
    assert "edge" in {row["name"] for row in data["strategies"]}


def test_new_will_not_reuse_another_files_strategy_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "other.py").write_text(GOOD)
    assert main(["strategy", "new", "good", "--path", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"arbot: error: good: already the name of a strategy in {tmp_path / 'other.py'}; "
        "choose another name (or pass --force)"
    )


def write_plugins(folder: Path) -> dict[str, str]:
    """A good plugin and one of each kind of broken one; returns file → expected problem."""
    folder.mkdir(exist_ok=True)
    (folder / "good.py").write_text(GOOD)
    broken = {
        "syntax.py": ("def f(:\n", "line 1: SyntaxError: "),
        "imports.py": ("import no_such_module_for_arbot_tests\n", "ModuleNotFoundError"),
        "nameless.py": (GOOD.replace('name = "good"', ""), "class Good: no name"),
        "newer.py": (
            GOOD.replace('name = "good"', 'name = "newer"\n    API_VERSION = 2'),
            "written for plugin API version 2",
        ),
        "default.py": (
            GOOD.replace('name = "good"', 'name = "bad_default"').replace(
                "default=5.0", 'default="x"'
            ),
            "Params.min_edge_bps: invalid default 'x'",
        ),
        "dup1.py": (GOOD.replace('name = "good"', 'name = "dup"'), "strategy name 'dup'"),
        "dup2.py": (GOOD.replace('name = "good"', 'name = "dup"'), "strategy name 'dup'"),
    }
    for filename, (text, _) in broken.items():
        (folder / filename).write_text(text)
    return {filename: needle for filename, (_, needle) in broken.items()}


def test_list_reports_each_broken_plugin_in_one_line_and_lists_the_good(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "strategies"
    expected = write_plugins(folder)
    assert main(["strategy", "list", "--path", str(folder)]) == 0
    captured = capsys.readouterr()
    rows = captured.out.splitlines()
    assert rows[0].split() == ["NAME", "SOURCE", "DESCRIPTION"]
    ours = [row for row in rows if str(folder) in row]
    assert [row.split()[:2] for row in ours] == [["good", str(folder / "good.py")]]
    assert ours[0].endswith("Does nothing, well.")
    for filename, needle in expected.items():
        lines = [line for line in captured.err.splitlines() if f"{folder / filename}:" in line]
        assert len(lines) == 1, (filename, captured.err)
        assert lines[0].startswith(f"arbot: warning: {folder / filename}: "), lines[0]
        assert needle in lines[0], lines[0]

    assert main(["strategy", "list", "--path", str(folder), "--strict"]) == 1
    capsys.readouterr()
    assert main(["strategy", "list", "--path", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "good" in {row["name"] for row in data["strategies"]}
    problem_files = {Path(p["source"]).name for p in data["problems"] if str(folder) in p["source"]}
    assert problem_files == set(expected)


def test_list_with_a_missing_path_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["strategy", "list", "--path", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"arbot: error: --path {tmp_path / 'nope'}: no such folder"
    )


def test_show_lists_params_with_types_defaults_and_docs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.py").write_text(GOOD)
    assert main(["strategy", "show", "good", "--path", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "good: Does nothing, well."
    assert out[1] == f"source: {tmp_path / 'good.py'}"
    start = out.index("params ([strategy.params]):")
    table = out[start + 1 : out.index("", start)]
    assert table[0].split() == ["PARAM", "TYPE", "DEFAULT", "DESCRIPTION"]
    assert table[1].split(None, 3) == [
        "min_edge_bps",
        "float",
        "5.0",
        "Smallest edge, in bps. [>= 0]",
    ]
    assert table[2].split(None, 3) == ["venue", "str", "(required)", "Venue to trade on."]
    assert table[3].split() == ["limits", "dict[str,", "int]", "{", "BTC", "=", "2", "}", "Caps."]
    assert "  min_edge_bps = 5.0" in out
    assert "  # venue = ...  (required)" in out
    assert "  limits = { BTC = 2 }" in out

    assert main(["strategy", "show", "good", "--path", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == [
        {
            "name": "min_edge_bps",
            "type": "float",
            "required": False,
            "default": 5.0,
            "constraints": ">= 0",
            "description": "Smallest edge, in bps.",
        },
        {
            "name": "venue",
            "type": "str",
            "required": True,
            "default": None,
            "constraints": "",
            "description": "Venue to trade on.",
        },
        {
            "name": "limits",
            "type": "dict[str, int]",
            "required": False,
            "default": {"BTC": 2},
            "constraints": "",
            "description": "Caps.",
        },
    ]


def test_show_of_a_broken_or_unknown_plugin_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "edge.py").write_text("import no_such_module_for_arbot_tests\n")
    assert main(["strategy", "show", "edge", "--path", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == [
        f"arbot: error: strategy 'edge' cannot be loaded: {tmp_path / 'edge.py'}: line 1: "
        "ModuleNotFoundError: No module named 'no_such_module_for_arbot_tests'"
    ]
    assert main(["strategy", "show", "nope", "--path", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1
    assert err[0].startswith(f"arbot: error: strategy 'nope': not found in {tmp_path} or the")


@pytest.mark.parametrize("command", [[], ["list"], ["show"], ["new"]])
def test_every_strategy_command_has_help(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["strategy", *command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: arbot strategy" in out
    if command:
        assert "Exit codes:" in out


def test_the_built_in_strategies_are_listed_from_the_repository(tmp_path: Path) -> None:
    # Needs strategies/cross_exchange.py and strategies/triangular.py (and pip install -e .).
    listed = arbot("strategy", "list", "--json", cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    rows = {row["name"]: row for row in data["strategies"]}
    assert rows["cross_exchange"]["source"] == "entry point arbot"
    assert rows["triangular"]["source"] == "entry point arbot"
    assert data["overridden"] == []
    assert data["problems"] == []
