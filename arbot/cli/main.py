"""Entry point: runs the typer app and turns user errors into one line and an exit code.

Exit codes (also in ``arbot --help`` and the README):

====  =====================================================================
0     success
1     a check ran and found a problem (e.g. a key that can withdraw); a daemon stopped
      by a halt; ``arbot status`` of an unhealthy daemon
2     bad input: command line, configuration, keystore, data file, database
130   interrupted (Ctrl-C)
====  =====================================================================
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run ``arbot`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    import typer

    from arbot.cli.app import build_app
    from arbot.errors import ArbotError
    from arbot.redact import redact

    app = build_app()
    try:
        result = app(args=argv, prog_name="arbot", standalone_mode=False)
    except ArbotError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"arbot: error: {redact(line)}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print("arbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"arbot: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    return result if isinstance(result, int) else EXIT_OK


def entry_point() -> None:
    """The ``arbot`` console script."""
    sys.exit(main())
