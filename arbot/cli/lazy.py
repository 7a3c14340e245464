"""Commands built only when used: ``arbot --help`` lists them from a table, and a
command's module is imported and turned into a click command only when it runs.

Building every typer command means evaluating every signature's annotations, which
cost a third of ``arbot --help``'s own time; the table's help lines are checked against
the real commands by a test so they cannot drift.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, NamedTuple

import typer
from typer.core import TyperGroup


class Entry(NamedTuple):
    module: str
    help: str


COMMANDS: dict[str, Entry] = {
    "init": Entry(
        "arbot.cli.project", "Write a starter config/arbot.toml and a strategies/ folder."
    ),
    "config": Entry("arbot.cli.config", "Validate and show settings."),
    "db": Entry("arbot.cli.db", "Inspect the database (runs, orders, fills, ...)."),
    "keys": Entry("arbot.cli.keys", "Manage the encrypted keystore and check key permissions."),
    "sim": Entry(
        "arbot.cli.sim",
        "Serve simulated Binance- and OKX-protocol venues on 127.0.0.1 until Ctrl-C.",
    ),
    "record": Entry(
        "arbot.cli.record",
        "Record every book update of every configured venue and symbol (Ctrl-C stops cleanly).",
    ),
    "data": Entry("arbot.cli.data", "Import and inspect recorded market data."),
    "strategy": Entry("arbot.cli.strategy", "List, scaffold and describe strategy plugins."),
    "status": Entry("arbot.cli.status", "Show the running daemon's feeds, risk state and PnL."),
    "report": Entry("arbot.cli.report", "Summarise trades and PnL from the database."),
    "run": Entry("arbot.cli.run", "Run the trading daemon (paper or live)."),
    "backtest": Entry(
        "arbot.cli.backtest", "Replay recorded books through strategy, risk and executor."
    ),
    "demo": Entry("arbot.cli.demo", "Run the self-contained demo against the local simulator."),
    "reload": Entry(
        "arbot.cli.run", "Re-read strategy params and risk limits in the running daemon."
    ),
    "halt": Entry("arbot.cli.control", "Trip the kill switch: stop taking opportunities."),
    "resume": Entry("arbot.cli.control", "Reset the kill switch: take opportunities again."),
}


def build(name: str, entry: Entry) -> Any:
    """The click command for ``name``: the module's ``app`` group, or what ``register`` adds."""
    module = import_module(entry.module)
    if hasattr(module, "app"):  # a group, even when it has one subcommand (config check)
        command = typer.main.get_group(module.app)
        command.name = name
        return _literal_brackets(command)
    holder = typer.Typer()
    module.register(holder)
    return _literal_brackets(typer.main.get_group(holder).commands[name])


def _literal_brackets(command: Any) -> Any:
    """Help texts name settings as ``[ops] port``; the help renderer (rich) would take
    ``[ops]`` for a markup tag and drop it, so brackets are escaped."""
    for param in getattr(command, "params", ()):
        if getattr(param, "help", None):
            param.help = param.help.replace("[", "\\[")
    if command.help:
        command.help = command.help.replace("[", "\\[")
    for sub in getattr(command, "commands", {}).values():
        _literal_brackets(sub)
    return command


class LazyGroup(TyperGroup):
    """The root group: lists commands from :data:`COMMANDS`, builds one when asked."""

    def _entries(self) -> dict[str, Entry]:
        return COMMANDS

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._entries())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            entry = self._entries().get(cmd_name)
            if entry is None:
                return None
            self.commands[cmd_name] = build(cmd_name, entry)
        return self.commands[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        entries = self._entries()
        limit = formatter.width - 6 - max(len(name) for name in entries)
        rows = [(name, _shorten(entry.help, limit)) for name, entry in entries.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 1)].rstrip() + "..."
