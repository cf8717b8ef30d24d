"""A lock file with a time limit, for what concurrent builds share: a
persistent build directory and the kit cache. flock is released by the
kernel when its holder dies, so a killed build never leaves a stale lock."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import BackendError, log

TIMEOUT_ENV = "UWSGI_PLUGIN_BACKEND_LOCK_TIMEOUT"  # the setting lock-timeout, named in the advice


@contextlib.contextmanager
def locked(path: Path, what: str, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) while the block
    runs, waiting ``timeout`` seconds at most for another holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"another build holds {what} ({path}) for longer than {timeout:g} s; "
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
