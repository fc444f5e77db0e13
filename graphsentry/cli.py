"""The ``graphsentry`` command line: one sub-command per module in ``graphsentry.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``graphsentry --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from graphsentry.errors import GraphsentryError

COMMANDS = (
    "demo", "normalize", "bridge", "detect", "run", "replay", "simulate", "backtest",
    "hunt", "enrich", "exceptions", "warm", "config", "topics", "health",
)


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"graphsentry.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"graphsentry.commands.{name}":
            return None
        raise


def version() -> str:
    """The installed distribution's version (package metadata), ``unknown`` when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("graphsentry")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphsentry",
        description="Streaming threat detection for Microsoft Graph activity logs.",
    )
    parser.add_argument("--version", action="version", version=f"graphsentry {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("graphsentry: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): stop quietly; point stdout at
        # /dev/null so that flushing it at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except GraphsentryError as exc:
        print(f"graphsentry {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
