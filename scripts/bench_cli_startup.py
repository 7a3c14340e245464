#!/usr/bin/env python3
"""How fast does ``arbot --help`` answer? Target: median <= 0.25 s.

Runs the installed console script repeatedly and reports the median and p90 wall time,
next to two baselines measured in the same run: a bare interpreter (``python -c pass``)
and the CLI framework alone (``python -c 'import typer'``). The ratios show what arbot
itself adds. Also checks that ``import arbot`` loads no ccxt.

    python scripts/bench_cli_startup.py [--runs 21] [--check]

``--check`` exits 1 when the median misses the target.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.25


def wall_times(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (default 21)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args()

    script = shutil.which("arbot", path=str(Path(sys.executable).parent)) or shutil.which("arbot")
    if script is None:
        print("arbot is not installed in this environment; run: pip install -e .", file=sys.stderr)
        return 2
    no_ccxt = subprocess.run(
        [sys.executable, "-c", "import arbot, sys; assert 'ccxt' not in sys.modules"],
        check=False,
    )
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "arbot --help": [script, "--help"],
    }
    results = {name: summary(wall_times(cmd, args.runs)) for name, cmd in cases.items()}
    bare = results["python -c pass"][0]
    framework = results["python -c 'import typer'"][0]
    print(f"{'command':<28} {'median s':>9} {'p90 s':>8} {'x python':>9} {'x typer':>8}")
    for name, (median, p90) in results.items():
        print(f"{name:<28} {median:9.3f} {p90:8.3f} {median / bare:9.2f} {median / framework:8.2f}")
    median = results["arbot --help"][0]
    verdict = "PASS" if median <= TARGET_SECONDS else "FAIL"
    print(f"arbot --help median {median:.3f} s, target <= {TARGET_SECONDS} s: {verdict}")
    print(f"import arbot leaves ccxt unloaded: {'yes' if no_ccxt.returncode == 0 else 'NO'}")
    failed = median > TARGET_SECONDS or no_ccxt.returncode != 0
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
