"""The C compiler the backend runs itself (load-time guard, pyuwsgi loader,
layout learning, library lookup): the one uwsgiconfig.py uses, and one clear
error when there is none."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from .errors import BackendError


def compiler() -> list[str]:
    """The C compiler uwsgiconfig.py uses: $CC, else the interpreter's CC, else gcc."""
    command = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "gcc")
    if not command:
        raise BackendError(f"$CC={os.environ.get('CC', '')!r} names no compiler; unset it or name one (CC=gcc)")
    return command


def run_compiler(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` (a compiler call); no compiler at all is the user's to fix."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as error:
        raise BackendError(
            f"no C compiler: cannot run {command[0]} ({error.strerror}); install gcc (apt-get install gcc) "
            "or name one with $CC"
        ) from None


def output_of(result: subprocess.CompletedProcess[bytes]) -> str:
    """What a compiler said, for a message."""
    return (result.stdout + result.stderr).decode(errors="replace")
