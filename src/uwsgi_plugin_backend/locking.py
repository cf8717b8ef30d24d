"""A lock file with a time limit, for what concurrent builds share: a
persistent build directory and the kit cache. flock is released by the
kernel when its holder dies, so a killed build never leaves a stale lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from .errors import BackendError, log

TIMEOUT_ENV = "UWSGI_PLUGIN_BACKEND_LOCK_TIMEOUT"


def lock_timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, "600"))
    except ValueError:
        raise BackendError(f"${TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r} is not a number of seconds") from None


@contextlib.contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + lock_timeout()
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"another build holds {what} ({path}) for longer than {lock_timeout():.0f} s; "
                        f"wait for it to finish, or raise ${TIMEOUT_ENV}"
                    ) from None
                if not waited:
                    log(f"waiting for another build using {what}")
                    waited = True
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
