"""Plugin discovery: folder files and entry points, one line per broken plugin, precedence."""

from __future__ import annotations

import textwrap
import uuid
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from arbot.errors import ConfigError
from arbot.strategy import Strategy
from arbot.strategy.loader import (
    ENTRY_POINT_GROUP,
    describe_params,
    discover,
    load_file,
    load_strategy,
)

REPO = Path(__file__).resolve().parents[2]

HEADER = """
from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from arbot.strategy import Strategy, StrategyParams
"""

GOOD = '''

class {cls}Params(StrategyParams):
    min_edge_bps: float = Field(default=5.0, ge=0, description="Smallest edge, in bps.")
    size: Decimal = Field(default=Decimal("0.01"), gt=0, description="Amount per trade.")
    venue: str | None = None


class {cls}(Strategy):
    """{doc}

    More text that is not the description.
    """

    name = "{name}"
    Params = {cls}Params

    def on_book(self, update, ctx):
        return []
'''


def plugin(name: str, cls: str = "Good", doc: str = "A plugin that does nothing.") -> str:
    """A whole plugin file."""
    return HEADER + plugin_class(name, cls, doc)


def plugin_class(name: str, cls: str = "Good", doc: str = "A plugin that does nothing.") -> str:
    """Just the classes, to add to a file that already has :data:`HEADER`."""
    return GOOD.format(name=name, cls=cls, doc=doc)


def write(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(textwrap.dedent(text))
    return path


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def module_name() -> str:
    """A fresh importable module name, so no test sees another's cached module."""
    return f"plugin_mod_{uuid.uuid4().hex[:10]}"


def test_a_folder_plugin_is_found_with_its_source_and_description(tmp_path: Path) -> None:
    file = write(tmp_path, "good.py", plugin("good"))
    found = discover(tmp_path, plugins=())
    assert found.problems == []
    assert found.folder_exists
    assert list(found.strategies) == ["good"]
    info = found.strategies["good"]
    assert info.source == str(file)
    assert info.description == "A plugin that does nothing."
    assert info.file == file.resolve()
    assert info.cls.__name__ == "Good"
    assert issubclass(info.cls, Strategy)


def test_only_named_classes_defined_in_the_file_are_plugins(tmp_path: Path) -> None:
    write(tmp_path, "base.py", plugin("base", cls="Base"))
    write(
        tmp_path,
        "derived.py",
        """
        from arbot.strategy import Strategy


        class Shared(Strategy):  # no name of its own: a base class, not a plugin
            def on_book(self, update, ctx):
                return []


        class Fast(Shared):
            name = "fast"


        class Slow(Shared):
            name = "slow"
        """,
    )
    found = discover(tmp_path, plugins=())
    assert found.problems == []
    assert sorted(found.strategies) == ["base", "fast", "slow"]
    assert found.strategies["fast"].cls.__name__ == "Fast"


def test_an_imported_plugin_class_is_not_listed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "lib"
    mod = module_name()
    write(library, f"{mod}.py", plugin("installed", cls="Installed"))
    monkeypatch.syspath_prepend(str(library))
    folder = tmp_path / "strategies"
    write(
        folder,
        "tuned.py",
        f"""
        from {mod} import Installed


        class Tuned(Installed):
            name = "tuned"
        """,
    )
    found = discover(folder, plugins=())
    assert found.problems == []
    assert list(found.strategies) == ["tuned"]


BROKEN = {
    "syntax.py": ("def on_book(:\n", "line 1: SyntaxError: "),
    "imports.py": (
        "import arbot\nimport no_such_module_for_arbot_tests\n",
        "line 2: ModuleNotFoundError: No module named 'no_such_module_for_arbot_tests'",
    ),
    "raises.py": ("x = 1\ny = x / 0\n", "line 2: ZeroDivisionError: division by zero"),
    "nameless.py": (
        """
        from arbot.strategy import Strategy


        class Nameless(Strategy):
            def on_book(self, update, ctx):
                return []
        """,
        'class Nameless: no name; set name = "..." in the class body',
    ),
    "badname.py": (
        plugin("Bad-Name", cls="BadName"),
        "class BadName: name 'Bad-Name' is not valid; use lowercase letters",
    ),
    "future.py": (
        plugin("future", cls="Future") + "    API_VERSION = 99\n",
        "class Future: written for plugin API version 99, this arbot supports up to 1; "
        "upgrade arbot",
    ),
    "baddefault.py": (
        """
        from pydantic import Field

        from arbot.strategy import Strategy, StrategyParams


        class Params(StrategyParams):
            min_edge_bps: float = Field(default="lots", ge=0)


        class BadDefault(Strategy):
            name = "bad_default"
            Params = Params

            def on_book(self, update, ctx):
                return []
        """,
        "class BadDefault: Params.min_edge_bps: invalid default 'lots': ",
    ),
    "plainparams.py": (
        """
        from pydantic import BaseModel

        from arbot.strategy import Strategy


        class Loose(BaseModel):
            x: int = 1


        class PlainParams(Strategy):
            name = "plain_params"
            Params = Loose

            def on_book(self, update, ctx):
                return []
        """,
        "class PlainParams: Params must be a subclass of arbot.strategy.StrategyParams",
    ),
    "abstract.py": (
        """
        from arbot.strategy import Strategy


        class Abstract(Strategy):
            name = "abstract"
        """,
        "class Abstract: does not implement on_book",
    ),
    "nothing.py": ("X = 1\n", "defines no Strategy subclass"),
}


def test_each_broken_plugin_is_one_line_naming_its_file_and_good_ones_still_list(
    tmp_path: Path,
) -> None:
    write(tmp_path, "good.py", plugin("good"))
    for filename, (text, _) in BROKEN.items():
        write(tmp_path, filename, text)
    write(tmp_path, "dup_a.py", plugin("dup", cls="DupA"))
    write(tmp_path, "dup_b.py", plugin("dup", cls="DupB"))

    found = discover(tmp_path, plugins=())

    assert list(found.strategies) == ["good"]
    by_file: dict[str, list[str]] = {}
    for problem in found.problems:
        line = str(problem)
        assert "\n" not in line
        assert line.startswith(f"{problem.source}: ")
        by_file.setdefault(Path(problem.source).name, []).append(problem.message)
    assert sorted(by_file) == sorted([*BROKEN, "dup_a.py", "dup_b.py"])
    for filename, (_, expected) in BROKEN.items():
        [message] = by_file[filename]
        assert message.startswith(expected) or expected in message, (filename, message)
    [dup_a] = by_file["dup_a.py"]
    assert dup_a == (
        f"class DupA: strategy name 'dup' is also used by {tmp_path / 'dup_b.py'} (DupB); "
        "rename one"
    )


def test_helpers_tests_and_other_files_are_not_plugins(tmp_path: Path) -> None:
    for filename in ["_helpers.py", "test_good.py", "good_test.py", "conftest.py"]:
        write(tmp_path, filename, "raise RuntimeError('must not be executed')\n")
    write(tmp_path, "notes.txt", "not python")
    write(tmp_path, "good.py", plugin("good"))
    found = discover(tmp_path, plugins=())
    assert found.problems == []
    assert list(found.strategies) == ["good"]


def test_a_missing_folder_contributes_nothing_and_says_so(tmp_path: Path) -> None:
    found = discover(tmp_path / "nope", plugins=())
    assert not found.folder_exists
    assert found.strategies == {}
    assert found.problems == []


def test_a_plugin_module_can_use_dataclasses_and_forward_references(tmp_path: Path) -> None:
    # Needs the module registered in sys.modules while it runs (dataclasses look it up).
    write(
        tmp_path,
        "typed.py",
        plugin("typed", cls="Typed")
        + """

from dataclasses import dataclass


@dataclass
class Quote:
    price: Decimal
    nxt: Quote | None = None
""",
    )
    found = discover(tmp_path, plugins=())
    assert found.problems == []
    assert "typed" in found.strategies


def test_entry_points_are_found_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = module_name()
    write(
        tmp_path,
        f"{mod}.py",
        plugin("installed", cls="Installed")
        + plugin_class("other_name", cls="Other")
        + "\nNOT_A_CLASS = 3\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover(
        None,
        plugins=[
            entry_point("installed", f"{mod}:Installed"),
            entry_point("mismatch", f"{mod}:Other"),
            entry_point("number", f"{mod}:NOT_A_CLASS"),
            entry_point("missing", "no_such_module_for_arbot_tests:Thing"),
        ],
    )
    assert list(found.strategies) == ["installed"]
    assert found.strategies["installed"].source == "entry point"
    assert found.strategies["installed"].file == (tmp_path / f"{mod}.py").resolve()
    lines = sorted(str(problem) for problem in found.problems)
    assert lines == [
        f"entry point mismatch = {mod}:Other: the entry point name 'mismatch' differs from "
        "the class's name 'other_name'; make them equal",
        "entry point missing = no_such_module_for_arbot_tests:Thing: ModuleNotFoundError: "
        "No module named 'no_such_module_for_arbot_tests'",
        f"entry point number = {mod}:NOT_A_CLASS: 3 is not a Strategy subclass",
    ]


def test_a_folder_plugin_overrides_an_entry_point_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "lib"
    mod = module_name()
    write(library, f"{mod}.py", plugin("spread", cls="Installed", doc="The installed one."))
    monkeypatch.syspath_prepend(str(library))
    folder = tmp_path / "strategies"
    local = write(folder, "spread.py", plugin("spread", cls="Local", doc="The local one."))

    found = discover(folder, plugins=[entry_point("spread", f"{mod}:Installed")])

    assert found.problems == []
    info = found.strategies["spread"]
    assert (info.source, info.description) == (str(local), "The local one.")
    [(winner, hidden)] = found.overridden
    assert winner is info
    assert hidden.cls.__name__ == "Installed"
    strategy = load_strategy(
        "spread", {}, folder, plugins=[entry_point("spread", f"{mod}:Installed")]
    )
    assert type(strategy).__name__ == "Local"


def test_a_folder_file_that_is_an_entry_points_module_is_loaded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The repository's own strategies/ folder: its files are also the built-in entry points.
    mod = module_name()
    write(tmp_path, f"{mod}.py", plugin("builtin", cls="Builtin"))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover(tmp_path, plugins=[entry_point("builtin", f"{mod}:Builtin")])
    assert found.problems == []
    assert found.overridden == []
    assert list(found.strategies) == ["builtin"]
    assert found.strategies["builtin"].source == "entry point"
    assert found.strategies["builtin"].cls.__module__ == mod


def test_two_entry_points_with_one_name_make_it_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = module_name()
    write(tmp_path / "lib", f"{mod}.py", plugin("same", cls="A") + plugin_class("same", cls="B"))
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    both = [entry_point("same", f"{mod}:A"), entry_point("same", f"{mod}:B")]
    found = discover(None, plugins=both)
    assert found.strategies == {}
    assert len(found.problems) == 2
    assert all("strategy name 'same' is also used by" in p.message for p in found.problems)
    with pytest.raises(ConfigError, match="strategy 'same' cannot be loaded: entry point"):
        load_strategy("same", {}, None, plugins=both)


def test_load_strategy_validates_params_and_names_the_file_and_field(tmp_path: Path) -> None:
    file = write(tmp_path, "good.py", plugin("good"))
    strategy = load_strategy("good", {"min_edge_bps": 12, "size": "0.5"}, tmp_path, plugins=())
    assert strategy.params.model_dump() == {
        "min_edge_bps": 12.0,
        "size": Decimal("0.5"),
        "venue": None,
    }
    with pytest.raises(ConfigError) as error:
        load_strategy("good", {"min_edge_bps": -1}, tmp_path, plugins=())
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{file}: strategy.params.min_edge_bps: ")
    assert "greater than or equal to 0" in message
    with pytest.raises(ConfigError, match=rf"^{file}: strategy\.params\.colour: Extra inputs"):
        load_strategy("good", {"colour": "blue"}, tmp_path, plugins=())


def test_load_strategy_explains_a_missing_or_broken_plugin(tmp_path: Path) -> None:
    write(tmp_path, "good.py", plugin("good"))
    broken = write(tmp_path, "broken.py", "import no_such_module_for_arbot_tests\n")
    with pytest.raises(ConfigError) as error:
        load_strategy("broken", {}, tmp_path, plugins=())
    assert str(error.value) == (
        f"strategy 'broken' cannot be loaded: {broken}: line 1: ModuleNotFoundError: "
        "No module named 'no_such_module_for_arbot_tests'"
    )
    with pytest.raises(ConfigError) as error:
        load_strategy("nope", {}, tmp_path, plugins=())
    assert str(error.value) == (
        f"strategy 'nope': not found in {tmp_path} or the installed plugins "
        "(available: good); 1 plugin problem(s), see arbot strategy list"
    )
    broken.unlink()
    with pytest.raises(ConfigError, match=r"\(available: good\); see arbot strategy list$"):
        load_strategy("nope", {}, tmp_path, plugins=())


def test_a_plugin_that_fails_to_start_is_a_config_error(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "fragile.py",
        plugin("fragile", cls="Fragile")
        + "\n    def __init__(self, params=None):\n        raise KeyError('BTC/USDT')\n",
    )
    with pytest.raises(ConfigError) as error:
        load_strategy("fragile", {}, tmp_path, plugins=())
    assert str(error.value) == f"{file}: class Fragile failed to start: 'BTC/USDT'"


def test_describe_params_gives_types_defaults_bounds_and_docs(tmp_path: Path) -> None:
    write(tmp_path, "good.py", plugin("good"))
    [info], problems = load_file(tmp_path / "good.py")
    assert problems == []
    rows = {p.name: p for p in describe_params(info.cls)}
    assert list(rows) == ["min_edge_bps", "size", "venue"]
    edge = rows["min_edge_bps"]
    assert (edge.type, edge.default, edge.required) == ("float", 5.0, False)
    assert (edge.constraints, edge.description) == (">= 0", "Smallest edge, in bps.")
    assert (rows["size"].type, rows["size"].default) == ("Decimal", Decimal("0.01"))
    assert rows["size"].constraints == "> 0"
    assert (rows["venue"].type, rows["venue"].default) == ("str | None", None)


def test_required_params_are_allowed_and_described(tmp_path: Path) -> None:
    write(
        tmp_path,
        "needs.py",
        """
        from arbot.strategy import Strategy, StrategyParams


        class Params(StrategyParams):
            venue: str


        class Needs(Strategy):
            name = "needs"
            Params = Params

            def on_book(self, update, ctx):
                return []
        """,
    )
    found = discover(tmp_path, plugins=())
    assert found.problems == []
    [venue] = describe_params(found.strategies["needs"].cls)
    assert (venue.name, venue.required, venue.type) == ("venue", True, "str")
    with pytest.raises(ConfigError, match=r"strategy\.params\.venue: Field required"):
        load_strategy("needs", {}, tmp_path, plugins=())


def test_the_built_in_strategies_are_listed_once_from_the_repository_folder() -> None:
    # Needs strategies/cross_exchange.py and strategies/triangular.py and the package
    # installed (pip install -e .) so their entry points exist.
    found = discover(REPO / "strategies")
    ours = [p for p in found.problems if "strategies" in p.source]
    assert ours == []
    assert found.overridden == []
    for name, cls in [("cross_exchange", "CrossExchange"), ("triangular", "Triangular")]:
        info = found.strategies[name]
        assert info.source == "entry point arbot"
        assert info.class_path == f"strategies.{name}:{cls}"
        assert info.description
