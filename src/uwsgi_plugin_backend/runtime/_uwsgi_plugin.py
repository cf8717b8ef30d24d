"""Where this wheel's uWSGI plugins are, for the uwsgi that will load them.

Written into every plugin wheel by uwsgi-plugin-backend; standard library
only, so an installed plugin needs nothing else at run time.

    uwsgi --plugins-dir "$(python -m PACKAGE)" --plugin NAME
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BUILDS_DIR = Path(__file__).with_name("uwsgi_builds")
ENV_VAR = "UWSGI_PLUGIN_BACKEND_UWSGI"


class NoMatchingBuild(LookupError):
    """This wheel holds no build of its plugins for the given uwsgi."""


def _builds() -> list[tuple[Path, dict]]:
    return [
        (record.parent, json.loads(record.read_text()))
        for record in sorted(BUILDS_DIR.glob("*/build.json"))
    ]


def default_uwsgi() -> str | None:
    """The uwsgi the user runs: $UWSGI_PLUGIN_BACKEND_UWSGI, the one beside
    this interpreter (a virtual environment's bin/), then PATH."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uwsgi")


def _ask(uwsgi: str, flag: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    try:
        result = subprocess.run([uwsgi, flag], capture_output=True, text=True, env=env, timeout=60)
    except OSError as error:
        raise NoMatchingBuild(f"cannot run {uwsgi}: {error.strerror}") from None
    if result.returncode != 0:
        raise NoMatchingBuild(f"{uwsgi} {flag} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _distribution() -> str:
    return __package__ or "this plugin"


def plugin_dir(uwsgi: str | None = None) -> str:
    """The absolute directory holding this wheel's ``<NAME>_plugin.so`` files
    built for ``uwsgi`` (default: the uwsgi the user runs)."""
    builds = _builds()
    binary = uwsgi or default_uwsgi()
    if binary is None:
        if len(builds) == 1:
            return str(builds[0][0])
        raise NoMatchingBuild("no uwsgi found to choose a build for; pass uwsgi=PATH (python -m ... --uwsgi PATH)")
    version, cflags = _ask(binary, "--version"), _ask(binary, "--cflags")
    for directory, record in builds:
        if record["uwsgi_version"] == version and record["uwsgi_cflags"] == cflags:
            return str(directory)
    carried = "\n".join(f"  uWSGI {record['uwsgi_version']} ({directory.name})" for directory, record in builds)
    raise NoMatchingBuild(
        f"{_distribution()} has no build of its plugins for {binary} (uWSGI {version}, CFLAGS {cflags}).\n"
        f"It carries builds for:\n{carried}\n"
        "A plugin built for another uWSGI can crash it. Build one for this uwsgi from source:\n"
        f"  UWSGI_PLUGIN_BACKEND_UWSGI={binary} pip install --no-binary :all: --force-reinstall <this distribution>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {_distribution()}",
        description="Print the directory holding this package's uWSGI plugins, for uwsgi --plugins-dir.",
    )
    parser.add_argument("--uwsgi", metavar="PATH", help="the uwsgi binary that will load the plugins (default: the one beside this python, then PATH)")
    args = parser.parse_args(argv)
    try:
        print(plugin_dir(args.uwsgi))
    except NoMatchingBuild as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
