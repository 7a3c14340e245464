"""Finding strategy plugins: installed entry points and ``.py`` files in the strategies folder.

Two sources, one rule set (see ``docs/strategies.md``):

* **Entry points** in the group ``arbot.strategies`` (``name = "module:Class"``), so an
  installed wheel brings its strategies; arbot's built-ins are registered this way.
* **Files** in the configured folder (``[strategy] path``, default ``strategies/``).
  Each ``*.py`` file is executed under a unique module name, by path, and every
  :class:`~arbot.strategy.base.Strategy` subclass *defined in that file* that sets
  ``name`` in its own body is a plugin. Files named ``_*.py``, ``test_*.py``,
  ``*_test.py`` and ``conftest.py`` are helpers and tests, never plugins.

A folder plugin **overrides** an entry point of the same name (the project folder is
what the operator edits; ``arbot strategy list`` notes every override). A file that
*is* an entry point's module (the repository's own ``strategies/`` folder) is loaded
once, as the entry point. Two plugins of the same name from the same tier make that
name unavailable: each is reported, neither runs.

A broken plugin never stops the others: it becomes a :class:`PluginProblem`, one line
naming the file (or entry point) and what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from pydantic import ValidationError

from arbot.errors import ConfigError
from arbot.strategy.base import Strategy, StrategyParams

ENTRY_POINT_GROUP = "arbot.strategies"
"""The ``importlib.metadata`` entry-point group plugins register under."""

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
"""A valid strategy name: lowercase letter first, then lowercase letters, digits and ``_``."""

_SKIPPED_FILES = re.compile(r"^(_.*|test_.*|.*_test|conftest)\.py$")


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """One loadable plugin: its class and where it came from."""

    name: str
    cls: type[Strategy]
    source: str
    """The file as found in the folder (``strategies/spread.py``) or ``entry point DIST``."""
    description: str
    file: Path | None = None
    """The resolved file of the class's module, when it has one."""

    @property
    def class_path(self) -> str:
        """``module:QualName`` of the class (the module name is synthetic for folder files)."""
        return f"{self.cls.__module__}:{self.cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class PluginProblem:
    """Why a file or entry point yields no (or not every) plugin; ``str()`` is one line."""

    source: str
    message: str
    name: str | None = None
    """The strategy name involved, when known (a duplicate, a refused class)."""

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(slots=True)
class Discovery:
    """Everything :func:`discover` found: usable plugins by name, and the problems."""

    strategies: dict[str, StrategyInfo] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    overridden: list[tuple[StrategyInfo, StrategyInfo]] = field(default_factory=list)
    """``(folder plugin, entry point it hides)`` for each name both provide."""
    folder: Path | None = None
    folder_exists: bool = False


def discover(
    path: Path | str | None = None, *, plugins: Iterable[EntryPoint] | None = None
) -> Discovery:
    """Find every plugin in the folder ``path`` and in the installed entry points.

    ``plugins`` replaces the installed entry points of :data:`ENTRY_POINT_GROUP` (tests
    pass their own, or ``()`` for none). A missing folder is not an error: it simply
    contributes nothing (``folder_exists`` says so).
    """
    found = Discovery()
    if plugins is None:
        plugins = entry_points(group=ENTRY_POINT_GROUP)
    from_entry_points: list[StrategyInfo] = []
    entry_point_files: set[Path] = set()
    for entry_point in sorted(plugins, key=lambda ep: (ep.name, ep.value)):
        origin = _module_file(entry_point.module)
        if origin is not None:
            entry_point_files.add(origin)
        info = _load_entry_point(entry_point, found.problems)
        if info is not None:
            from_entry_points.append(info)

    from_folder: list[StrategyInfo] = []
    if path is not None:
        folder = Path(path)
        found.folder = folder
        found.folder_exists = folder.is_dir()
        if found.folder_exists:
            for file in sorted(folder.glob("*.py")):
                if _SKIPPED_FILES.match(file.name) or not file.is_file():
                    continue
                if file.resolve() in entry_point_files:
                    continue  # the same file is already loaded as an entry point
                from_folder.extend(_load_file(file, found.problems))

    by_name: dict[str, tuple[list[StrategyInfo], list[StrategyInfo]]] = {}
    for info in from_entry_points:
        by_name.setdefault(info.name, ([], []))[0].append(info)
    for info in from_folder:
        by_name.setdefault(info.name, ([], []))[1].append(info)
    for name in sorted(by_name):
        installed, local = by_name[name]
        tier = local or installed
        if len(tier) > 1:
            for info in tier:
                others = ", ".join(
                    f"{other.source} ({other.cls.__qualname__})" for other in tier if other != info
                )
                found.problems.append(
                    PluginProblem(
                        info.source,
                        f"class {info.cls.__qualname__}: strategy name {name!r} is also used "
                        f"by {others}; rename one",
                        name,
                    )
                )
            continue
        found.strategies[name] = tier[0]
        if local:
            found.overridden.extend((local[0], hidden) for hidden in installed)
    return found


def load_strategy(
    name: str,
    params: Mapping[str, Any] | None = None,
    path: Path | str | None = None,
    *,
    plugins: Iterable[EntryPoint] | None = None,
    source: str = "strategy.params",
) -> Strategy:
    """Discover plugins, pick ``name`` and build it from the raw ``params`` table.

    Raises :class:`~arbot.errors.ConfigError` with one line naming the plugin file (or
    entry point) and the problem: a broken plugin, an unknown name, or invalid params
    (``FILE: strategy.params.min_edge_bps: ...``).
    """
    info = pick(discover(path, plugins=plugins), name)
    try:
        return info.cls.from_params(params, source=source)
    except ConfigError as exc:
        raise ConfigError(f"{info.source}: {exc}") from None
    except Exception as exc:
        raise ConfigError(
            f"{info.source}: class {info.cls.__qualname__} failed to start: {_one_line(exc)}"
        ) from None


def pick(found: Discovery, name: str) -> StrategyInfo:
    """The plugin called ``name``, or :class:`~arbot.errors.ConfigError` saying why not.

    When the name is missing because its plugin is broken, the error is that plugin's
    problem line; otherwise it lists the names that are available.
    """
    info = found.strategies.get(name)
    if info is not None:
        return info
    for problem in found.problems:
        if problem.name == name or (problem.name is None and Path(problem.source).stem == name):
            raise ConfigError(f"strategy {name!r} cannot be loaded: {problem}")
    known = ", ".join(found.strategies) or "none"
    where = f"{found.folder} or " if found.folder is not None else ""
    broken = f"{len(found.problems)} plugin problem(s), " if found.problems else ""
    raise ConfigError(
        f"strategy {name!r}: not found in {where}the installed plugins (available: {known}); "
        f"{broken}see arbot strategy list"
    )


def load_file(file: Path | str) -> tuple[list[StrategyInfo], list[PluginProblem]]:
    """Load the plugins of one file, exactly as discovery would (for tests and tools)."""
    problems: list[PluginProblem] = []
    return _load_file(Path(file), problems), problems


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """One field of a plugin's ``Params``, as ``arbot strategy show`` presents it."""

    name: str
    type: str
    default: Any
    """The default value (``None`` also when required; see ``required``)."""
    required: bool
    description: str
    constraints: str
    """Bounds and other metadata, e.g. ``>= 0, < 100``; empty when there are none."""


def describe_params(cls: type[Strategy]) -> list[ParamInfo]:
    """The fields of ``cls.Params`` with types, defaults, constraints and descriptions."""
    out = []
    for name, info in cls.Params.model_fields.items():
        required = info.is_required()
        default: Any = None
        if not required:
            try:
                default = info.get_default(call_default_factory=True, validated_data={})
            except Exception:
                default = None
        out.append(
            ParamInfo(
                name=info.alias or name,
                type=_type_name(info.annotation),
                default=default,
                required=required,
                description=" ".join((info.description or "").split()),
                constraints=", ".join(_constraints(info.metadata)),
            )
        )
    return out


def class_problem(cls: type[Strategy], *, name: object = None) -> str | None:
    """Why ``cls`` cannot be a plugin (one line, without the file), or ``None``.

    ``name`` is the name to check; by default ``cls.name``.
    """
    label = f"class {cls.__qualname__}"
    name = cls.name if name is None else name
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return (
            f"{label}: name {name!r} is not valid; use lowercase letters, digits and _, "
            "starting with a letter"
        )
    version = cls.API_VERSION
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"{label}: API_VERSION must be a positive integer (got {version!r})"
    if version > Strategy.API_VERSION:
        return (
            f"{label}: written for plugin API version {version}, this arbot supports up to "
            f"{Strategy.API_VERSION}; upgrade arbot"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        return f"{label}: does not implement {missing}"
    params = cls.__dict__.get("Params", cls.Params)
    if not (isinstance(params, type) and issubclass(params, StrategyParams)):
        return f"{label}: Params must be a subclass of arbot.strategy.StrategyParams"
    problem = _params_default_problem(params)
    if problem:
        return f"{label}: {problem}"
    interval = cls.timer_interval_s
    if interval is not None and (
        not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0
    ):
        return f"{label}: timer_interval_s must be a positive number or None (got {interval!r})"
    return None


# -- internals ---------------------------------------------------------------------------


def _load_entry_point(
    entry_point: EntryPoint, problems: list[PluginProblem]
) -> StrategyInfo | None:
    dist = getattr(entry_point, "dist", None)
    dist_name = getattr(dist, "name", None)
    where = f"entry point {entry_point.name} = {entry_point.value}"
    if dist_name:
        where += f" ({dist_name})"
    try:
        obj = entry_point.load()
    except (Exception, SystemExit) as exc:
        problems.append(PluginProblem(where, _import_problem(exc, None), entry_point.name))
        return None
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        problems.append(
            PluginProblem(where, f"{obj!r} is not a Strategy subclass", entry_point.name)
        )
        return None
    problem = class_problem(obj)
    if problem:
        problems.append(PluginProblem(where, problem, entry_point.name))
        return None
    if obj.name != entry_point.name:
        problems.append(
            PluginProblem(
                where,
                f"the entry point name {entry_point.name!r} differs from the class's name "
                f"{obj.name!r}; make them equal",
                obj.name,
            )
        )
        return None
    return StrategyInfo(
        name=obj.name,
        cls=obj,
        source=f"entry point {dist_name}" if dist_name else "entry point",
        description=obj.description(),
        file=_class_file(obj),
    )


def _load_file(file: Path, problems: list[PluginProblem]) -> list[StrategyInfo]:
    source = str(file)
    try:
        module = _exec_file(file)
    except (Exception, SystemExit) as exc:
        problems.append(PluginProblem(source, _import_problem(exc, file.resolve())))
        return []
    candidates: list[type[Strategy]] = []
    unnamed: list[type[Strategy]] = []
    for obj in vars(module).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, Strategy)
            and obj is not Strategy
            and obj.__module__ == module.__name__
        ):
            (candidates if "name" in obj.__dict__ else unnamed).append(obj)
    if not candidates:
        if unnamed:
            classes = ", ".join(cls.__qualname__ for cls in unnamed)
            message = f'class {classes}: no name; set name = "..." in the class body'
        else:
            message = "defines no Strategy subclass (helpers belong in _*.py files)"
        problems.append(PluginProblem(source, message))
        return []
    out = []
    for cls in candidates:
        name = cls.__dict__["name"]
        problem = class_problem(cls, name=name)
        if problem:
            problems.append(PluginProblem(source, problem, _name_or_none(name)))
            continue
        out.append(
            StrategyInfo(
                name=name,
                cls=cls,
                source=source,
                description=cls.description(),
                file=file.resolve(),
            )
        )
    return out


def _exec_file(file: Path) -> ModuleType:
    """Execute ``file`` as a fresh module with a name unique to its resolved path."""
    resolved = file.resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:10]
    stem = re.sub(r"\W", "_", resolved.stem)
    module_name = f"_arbot_plugin_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while executing, so dataclasses and pydantic models can find the module.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _module_file(module: str) -> Path | None:
    """The file of ``module`` without executing it (its parent packages are imported)."""
    try:
        spec = importlib.util.find_spec(module)
    except (Exception, SystemExit):
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    return Path(spec.origin).resolve()


def _class_file(cls: type) -> Path | None:
    try:
        return Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):
        return None


def _import_problem(exc: BaseException, file: Path | None) -> str:
    if isinstance(exc, SyntaxError) and (file is None or exc.filename == str(file)):
        return f"line {exc.lineno}: SyntaxError: {exc.msg}"
    line = _line_in(exc.__traceback__, file) if file is not None else None
    where = f"line {line}: " if line is not None else ""
    return f"{where}{type(exc).__name__}: {_one_line(exc)}"


def _line_in(tb: TracebackType | None, file: Path) -> int | None:
    """The line of the innermost traceback frame that runs in ``file``."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(file):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _name_or_none(name: object) -> str | None:
    return name if isinstance(name, str) and name else None


def _params_default_problem(params: type[StrategyParams]) -> str | None:
    """A default that the field itself would refuse (pydantic does not check defaults)."""
    data: dict[str, Any] = {}
    for name, info in params.model_fields.items():
        if info.is_required():
            continue
        try:
            data[info.alias or name] = info.get_default(
                call_default_factory=True, validated_data={}
            )
        except Exception as exc:
            return f"Params.{name}: default factory failed: {_one_line(exc)}"
    try:
        params.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] == "missing":
                continue  # a required parameter: the config must supply it
            where = ".".join(str(part) for part in error["loc"])
            got = error.get("input")
            return f"Params.{where}: invalid default {got!r}: {error['msg']}"
    except Exception as exc:
        return f"Params: validating the defaults failed: {_one_line(exc)}"
    return None


_MODULE_PREFIX = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Za-z_])")


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return _MODULE_PREFIX.sub("", repr(annotation))


_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _constraints(metadata: Iterable[Any]) -> list[str]:
    out = []
    for item in metadata:
        values = getattr(item, "__dict__", None) or {
            slot: getattr(item, slot) for slot in getattr(item, "__slots__", ()) if slot
        }
        for key, value in values.items():
            if value is None:
                continue
            if key in _BOUNDS:
                out.append(f"{_BOUNDS[key]} {value}")
            elif key == "allow_inf_nan":
                if not value:
                    out.append("finite")
            elif key == "multiple_of":
                out.append(f"multiple of {value}")
            else:
                out.append(f"{key}={value!r}")
    return out
