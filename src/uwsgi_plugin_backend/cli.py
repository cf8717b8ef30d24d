"""The command line: ``python -m uwsgi_plugin_backend`` / ``uwsgi-plugin-backend``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import BackendError


def _merge(args: argparse.Namespace) -> int:
    from .merge import merge_wheels

    target = merge_wheels([Path(w) for w in args.wheels], Path(args.output))
    print(target)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="uwsgi-plugin-backend", description="Build, ship and use uWSGI plugins as wheels.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    merge = commands.add_parser(
        "merge",
        help="join wheels of one project version built for different uWSGI builds into one wheel",
        description="Join wheels of the same project version and tags, each built for other uWSGI builds "
        "(e.g. one CI job per uWSGI version), into one wheel that carries every build.",
    )
    merge.add_argument("wheels", nargs="+", metavar="WHEEL", help="the wheels to join")
    merge.add_argument("-o", "--output", required=True, metavar="DIR", help="where to write the merged wheel")
    merge.set_defaults(run=_merge)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BackendError as error:
        print(f"uwsgi-plugin-backend: error: {error}", file=sys.stderr)
        return 1
