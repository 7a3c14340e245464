"""Parameter sweeps: one backtest per point of a grid over the settings, run on the
local cores or on a Dask distributed cluster (``arbot backtest --sweep``).

A sweep file is TOML::

    [grid]
    "strategy.params.min_edge_bps" = [0, 2, 5]
    "backtest.venues.binance.order_latency.ms" = [0, 50]

    [sweep]
    seed = 1      # optional: [backtest] seed of every point (the grid may vary it instead)
    workers = 0   # local worker processes; 0 = every core

Each ``[grid]`` key is a dotted settings key (quoted, or written as nested tables) with
the list of values to try; the points are the Cartesian product, the first key varying
slowest. :func:`plan` turns the base settings and the file into :class:`SweepPoint`\\ s,
each a complete :class:`~arbot.config.Settings` validated before anything runs (its
strategy params too), so a typo or a bad value is one line naming it, not a failure
half-way through.

Every point runs :class:`~arbot.backtest.runner.Backtest` on a *task*: plain JSON-able
data (the settings as a dict, the dataset as a path string or ``file://`` URL, the
replay window), never a pickled live object, so a worker needs only ``arbot`` installed
and the dataset in reach. Each task writes its run to a temporary SQLite file of its
own, deleted afterwards (the sweep's book of record is ``sweep.csv``); no SQLite file is
ever shared between processes. A backtest is deterministic, so a point's figures do not
depend on where or alongside what it ran: :func:`run_local` with any number of workers
and :func:`run_cluster` return the same rows.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin
from urllib.parse import unquote, urlsplit

from arbot.errors import ArbotError, ConfigError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from arbot.config import Settings

FIGURES = (
    "opportunities_seen",
    "opportunities_taken",
    "fills",
    "pnl_net_quote",
    "fees_quote",
    "max_drawdown_quote",
    "turnover_quote",
    "legs_unwound",
)
"""The summary figures (see ``summary.json``) that a sweep row carries."""

MAX_POINTS = 10_000
"""More points than this is almost surely a mistake in the grid."""

_NOT_SWEPT = {
    "database_url": "each point runs on a temporary store of its own",
    "keystore": "a backtest uses no keys",
}

_ADDRESS = re.compile(r"^(?:(?:tcp|tls)://)?(?:\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}$")
"""A Dask scheduler address: ``tcp://HOST:PORT`` (or ``tls://``, or no scheme)."""

Progress = Callable[[int], None]
"""Called with the number of points finished so far, after each one."""


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: the grid (dotted key → values, in file order) and options."""

    grid: dict[str, list[Any]]
    seed: int | None = None
    workers: int = 0
    source: str = "sweep"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.grid)


@dataclass(frozen=True)
class SweepPoint:
    """One point of the grid: its 1-based number (grid order), values and settings."""

    number: int
    values: tuple[tuple[str, Any], ...]
    settings: Settings

    @property
    def label(self) -> str:
        """``key=value, ...``, as in error messages."""
        return ", ".join(f"{key}={text(value)}" for key, value in self.values)


Row = dict[str, Any]
"""``point``, each grid key's value, then :data:`FIGURES`."""


# ----- the sweep file -----------------------------------------------------------------


def read_sweep(path: Path) -> SweepSpec:
    """Read and check a sweep file (one-line :class:`ConfigError` on any problem)."""
    from arbot.config import read_toml

    return parse_sweep(read_toml(path), source=str(path))


def parse_sweep(document: Mapping[str, Any], *, source: str = "sweep") -> SweepSpec:
    """Check a sweep document (the parsed TOML) and return its grid and options."""
    for name in document:
        if name not in ("grid", "sweep"):
            raise ConfigError(
                f"{source}: unknown table [{name}]; a sweep file has [grid] (settings keys "
                "and the values to try) and [sweep] (seed, workers)"
            )
    table = document.get("grid", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: grid: expected a table, e.g. [grid]")
    grid: dict[str, list[Any]] = {}
    for key, values in _flatten(table, ""):
        if not isinstance(values, list):
            raise ConfigError(
                f"{source}: grid: {key}: expected a list of values to try (got {text(values)}); "
                f"write [{text(values)}] for a single value"
            )
        if not values:
            raise ConfigError(f"{source}: grid: {key}: the list is empty; give it values to try")
        seen = [text(value) for value in values]
        repeated = next((value for value in seen if seen.count(value) > 1), None)
        if repeated is not None:
            raise ConfigError(
                f"{source}: grid: {key}: {repeated} is listed more than once; list it once"
            )
        grid[key] = values
    if not grid:
        raise ConfigError(
            f"{source}: [grid] lists no settings to vary; add one, e.g. "
            '"strategy.params.min_edge_bps" = [0, 5]'
        )
    options = document.get("sweep", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{source}: sweep: expected a table, e.g. [sweep]")
    for name in options:
        if name not in ("seed", "workers"):
            raise ConfigError(
                f"{source}: sweep.{name}: unknown key; expected one of: seed, workers"
            )
    seed = options.get("seed")
    workers = options.get("workers", 0)
    for name, value in (("seed", seed), ("workers", workers)):
        if value is not None and (type(value) is not int or value < 0):
            raise ConfigError(
                f"{source}: sweep.{name}: expected a whole number >= 0 (got {text(value)})"
            )
    return SweepSpec(grid, seed, workers, source)


def _flatten(table: Mapping[str, Any], prefix: str) -> Iterable[tuple[str, Any]]:
    """``{"a": {"b": [1]}}`` and ``{"a.b": [1]}`` alike as ``("a.b", [1])``."""
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            yield from _flatten(value, key)
        else:
            yield key, value


# ----- planning -----------------------------------------------------------------------


def plan(
    settings: Settings,
    sweep: SweepSpec | Mapping[str, Any],
    *,
    seed: int | None = None,
) -> list[SweepPoint]:
    """Every point of the grid as validated settings, in grid order.

    Parameters:
        settings: the base settings (``-c FILE``); the grid overrides keys of them.
        sweep: a :class:`SweepSpec`, or a sweep document (parsed TOML).
        seed: ``[backtest] seed`` of every point (default: the sweep file's ``seed``,
            else the settings'); an error if the grid varies ``backtest.seed`` too.

    Raises :class:`ConfigError` (one line) for an unknown key, a bad value (naming the
    point and the key) or strategy params the strategy refuses.
    """
    from arbot.config import Settings

    spec = sweep if isinstance(sweep, SweepSpec) else parse_sweep(sweep)
    source = spec.source
    for key in spec.grid:
        _check_key(key, settings, source)
    seed = spec.seed if seed is None else seed
    base = settings.model_dump(mode="json", by_alias=True)
    if seed is not None:
        if "backtest.seed" in spec.grid:
            raise ConfigError(
                f"{source}: grid: backtest.seed: the grid varies the seed, and a seed is "
                "also given (--seed or [sweep] seed); keep one of them"
            )
        base["backtest"]["seed"] = seed
    count = 1
    for listed in spec.grid.values():
        count *= len(listed)
    if count > MAX_POINTS:
        raise ConfigError(
            f"{source}: the grid has {count:,} points, more than {MAX_POINTS:,}; list fewer values"
        )
    points: list[SweepPoint] = []
    strategies: dict[str, None] = {}
    for number, combination in enumerate(itertools.product(*spec.grid.values()), start=1):
        values = tuple(zip(spec.grid, combination, strict=True))
        document = copy.deepcopy(base)
        for key, value in values:
            _assign(document, key.split("."), value)
        where = f"{source}: point {number} ({', '.join(f'{k}={text(v)}' for k, v in values)})"
        point = SweepPoint(number, values, _validate(Settings, document, where))
        _check_strategy(point.settings, strategies, where)
        points.append(point)
    return points


def _check_key(key: str, settings: Settings, source: str) -> None:
    """Refuse a grid key that names no setting, with the keys that would be accepted."""
    from pydantic import BaseModel

    from arbot.config import Settings, unwrap_optional

    parts = key.split(".")
    if not all(parts):
        raise ConfigError(
            f"{source}: grid: {key!r}: not a dotted settings key, e.g. "
            '"strategy.params.min_edge_bps"'
        )
    if parts[0] in _NOT_SWEPT:
        raise ConfigError(f"{source}: grid: {key}: not swept: {_NOT_SWEPT[parts[0]]}; remove it")
    annotation: Any = Settings
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth])
        annotation = unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {
                (info.alias or name): info
                for name, info in annotation.model_fields.items()
                if not info.exclude
            }
            info = fields.get(part)
            if info is None:
                within = f" of {here}" if here else ""
                raise ConfigError(
                    f"{source}: grid: {key}: unknown key {part!r}{within}; expected one of: "
                    f"{', '.join(sorted(fields))}"
                )
            annotation = info.annotation
        elif get_origin(annotation) is dict:
            if here in ("venues", "backtest.venues") and part not in settings.venues:
                configured = ", ".join(settings.venues) or "none"
                raise ConfigError(
                    f"{source}: grid: {key}: {part!r} is not a configured venue (configured: "
                    f"{configured}); fix the name or add [venues.{part}] to the settings"
                )
            annotation = get_args(annotation)[1]
            if annotation is Any:  # strategy.params: the strategy checks them (plan())
                return
        else:
            raise ConfigError(
                f"{source}: grid: {key}: {here} is a single value, not a table; vary {here} itself"
            )


def _assign(document: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    for part in parts[:-1]:
        child = document.get(part)
        if not isinstance(child, dict):
            child = document[part] = {}
        document = child
    document[parts[-1]] = copy.deepcopy(value)


def _validate(model: type[Settings], document: dict[str, Any], where: str) -> Settings:
    from pydantic import ValidationError

    from arbot.config import describe_errors

    try:
        return model.model_validate(document)
    except ValidationError as exc:
        marker = "<sweep>"
        first = describe_errors(exc, Path(marker), document, environ={})[0]
        raise ConfigError(f"{where}: {first.removeprefix(marker + ': ')}") from None


def _check_strategy(settings: Settings, checked: dict[str, None], where: str) -> None:
    """Build the point's strategy once per distinct (name, path, params): its params are
    checked by the plugin, which the settings cannot do."""
    from arbot.strategy.loader import load_strategy

    strategy = settings.strategy
    signature = json.dumps([strategy.name, str(strategy.path), strategy.params], default=str)
    if signature in checked:
        return
    try:
        load_strategy(strategy.name, strategy.params, strategy.path)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    checked[signature] = None


# ----- tasks --------------------------------------------------------------------------


def data_reference(data: str | Path) -> str:
    """The dataset as workers get it: an absolute path, or a ``file://`` URL as given.

    Raises :class:`ArbotError` for a URL of another scheme (workers open the dataset as
    a folder: put it on a file system they share, and give its path).
    """
    given = str(data)
    if "://" in given:
        local_path(given)  # checks the scheme
        return given
    return str(Path(given).expanduser().absolute())


def local_path(data: str) -> Path:
    """A dataset path string or ``file://`` URL as a local path."""
    if "://" not in data:
        return Path(data)
    parts = urlsplit(data)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ArbotError(
            f"{data}: a dataset is a folder; give its path or a file:// URL (on a file system "
            "every worker shares), not a URL of another scheme or host"
        )
    return Path(unquote(parts.path))


def task(
    point: SweepPoint,
    data: str,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    log_level: str = "ERROR",
) -> dict[str, Any]:
    """What a worker gets for ``point``: plain JSON-able data (see :func:`run_task`)."""
    settings = point.settings.model_dump(mode="json", by_alias=True)
    settings["database_url"] = "sqlite://"  # each task writes to a temporary file of its own
    path = point.settings.strategy.path
    if not path.is_absolute():  # plugins are found relative to the working directory
        settings["strategy"]["path"] = str(path.absolute())
    return {
        "point": point.number,
        "settings": settings,
        "data": data,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "log_level": log_level,
    }


def run_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task (from :func:`task`) and return its backtest's ``summary.json`` document.

    The run is stored in a temporary SQLite file, removed before this returns.
    """
    from arbot.backtest.runner import Backtest
    from arbot.config import Settings

    data = local_path(task["data"])
    with tempfile.TemporaryDirectory(prefix="arbot-sweep-") as folder:
        document = dict(task["settings"])
        document["database_url"] = f"sqlite:///{Path(folder) / 'backtest.db'}"
        settings = Settings.model_validate(document)
        result = Backtest(settings, data, start_ns=task["start_ns"], end_ns=task["end_ns"]).run()
        return result.summary


_logging_level: str | None = None


def _worker_run(task: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`run_task` in a worker process, whose logging it sets first (once): with
    many points at once, only errors are worth a line."""
    global _logging_level
    level = task.get("log_level", "ERROR")
    if _logging_level != level:
        from arbot.logs import configure_logging

        configure_logging(level=level)
        _logging_level = level
    return run_task(task)


# ----- running ------------------------------------------------------------------------


def local_cores() -> int:
    """The cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def run_local(
    points: Sequence[SweepPoint],
    data: str | Path,
    workers: int = 0,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Progress | None = None,
    log_level: str = "ERROR",
) -> list[Row]:
    """Run every point in a pool of ``workers`` processes (0: every core; never more
    than there are points), started fresh (``spawn``). Rows in grid order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    reference = data_reference(data)
    tasks = [
        task(p, reference, start_ns=start_ns, end_ns=end_ns, log_level=log_level) for p in points
    ]
    count = max(1, min(workers or local_cores(), len(tasks)))
    summaries: list[dict[str, Any] | None] = [None] * len(tasks)
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: dict[Future[dict[str, Any]], int] = {
            pool.submit(_worker_run, t): i for i, t in enumerate(tasks)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            summaries[index] = _outcome(future.result, points[index])
            if progress is not None:
                progress(done)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
    return rows(points, summaries)


def run_cluster(
    points: Sequence[SweepPoint],
    data: str | Path,
    address: str,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Progress | None = None,
    log_level: str = "ERROR",
    timeout_s: float = 10.0,
) -> list[Row]:
    """Run every point as a task on the Dask distributed scheduler at ``address``
    (``tcp://HOST:PORT``). Its workers need ``arbot`` installed and ``data`` (a path or
    ``file://`` URL) in reach. Rows in grid order, equal to :func:`run_local`'s."""
    if not _ADDRESS.match(address):
        raise ArbotError(
            f"--cluster {address}: not a scheduler address; expected tcp://HOST:PORT, "
            "e.g. tcp://127.0.0.1:8786"
        )
    try:
        import distributed
    except ImportError:
        raise ArbotError(
            "--cluster needs Dask distributed, which is not installed; install it with: "
            "pip install 'arbot[cluster]'"
        ) from None

    dask: Any = distributed  # untyped
    reference = data_reference(data)
    tasks = [
        task(p, reference, start_ns=start_ns, end_ns=end_ns, log_level=log_level) for p in points
    ]
    try:
        client = dask.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArbotError(
            f"--cluster {address}: cannot reach a Dask scheduler there ({first}); start one "
            "(dask scheduler; dask worker ADDRESS) or fix the address"
        ) from None
    summaries: list[dict[str, Any] | None] = [None] * len(tasks)
    with client:
        futures = [client.submit(_worker_run, t, pure=False) for t in tasks]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for done, future in enumerate(dask.as_completed(futures, loop=client.loop), start=1):
                i = index[future.key]
                summaries[i] = _outcome(future.result, points[i])
                if progress is not None:
                    progress(done)
        except BaseException:
            client.cancel(futures)
            raise
    return rows(points, summaries)


def _outcome(result: Callable[[], dict[str, Any]], point: SweepPoint) -> dict[str, Any]:
    try:
        return result()
    except ArbotError as exc:
        raise ArbotError(f"point {point.number} ({point.label}): {exc}") from None


# ----- results ------------------------------------------------------------------------


def rows(points: Sequence[SweepPoint], summaries: Sequence[Mapping[str, Any] | None]) -> list[Row]:
    """One row per point: its number, its grid values, the :data:`FIGURES` of its run."""
    out: list[Row] = []
    for point, summary in zip(points, summaries, strict=True):
        assert summary is not None
        row: Row = {"point": point.number, **dict(point.values)}
        row.update((name, summary[name]) for name in FIGURES)
        out.append(row)
    return out


def text(value: Any) -> str:
    """A value as a CSV cell or in a message: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def columns(keys: Sequence[str]) -> list[str]:
    return ["point", *keys, *FIGURES]


def csv_text(keys: Sequence[str], table: Sequence[Row]) -> str:
    """``sweep.csv``: a header (``point``, the grid keys, :data:`FIGURES`), one line a point."""
    import csv
    import io

    names = columns(keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([text(row[name]) for name in names] for row in table)
    return buffer.getvalue()


def write_csv(path: Path, keys: Sequence[str], table: Sequence[Row]) -> Path:
    """Write ``sweep.csv`` atomically (the folder is created)."""
    from arbot.fileio import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, csv_text(keys, table))
    return path


def short_names(keys: Sequence[str]) -> list[str]:
    """The shortest dotted suffix of each key (two parts at least) that no other key
    ends with: ``params.min_edge_bps``, ``binance.order_latency.ms``."""
    names = []
    for key in keys:
        parts = key.split(".")
        for size in range(min(2, len(parts)), len(parts) + 1):
            name = ".".join(parts[-size:])
            if not any(other != key and other.endswith("." + name) for other in keys):
                break
        names.append(name)
    return names


__all__ = [
    "FIGURES",
    "MAX_POINTS",
    "Progress",
    "Row",
    "SweepPoint",
    "SweepSpec",
    "columns",
    "csv_text",
    "data_reference",
    "local_cores",
    "local_path",
    "parse_sweep",
    "plan",
    "read_sweep",
    "rows",
    "run_cluster",
    "run_local",
    "run_task",
    "short_names",
    "task",
    "text",
    "write_csv",
]
