"""One error type for everything a user can fix, and the wrapper that turns it
into a single ``uwsgi-plugin-backend: error: ...`` message instead of a traceback."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class BackendError(Exception):
    """A problem the user can fix; the message says what, where and how."""


def _colour(code: str, text: str) -> str:
    """ANSI colour on a terminal only (NO_COLOR turns it off, FORCE_COLOR on)."""
    wanted = os.environ.get("FORCE_COLOR") or (sys.stderr.isatty() and not os.environ.get("NO_COLOR"))
    return f"\033[{code}m{text}\033[0m" if wanted else text


def log(message: str) -> None:
    """One line of build log; pip shows it with -v or when the build fails."""
    print(f"{_colour('1', 'uwsgi-plugin-backend:')} {message}", file=sys.stderr, flush=True)


def report(error: BackendError) -> None:
    """The one way a user's error is shown, by the hooks and the command line alike
    (the runtime module, standard library only, prints the same prefix itself)."""
    sys.stdout.flush()
    print(f"{_colour('1;31', 'uwsgi-plugin-backend: error:')} {error}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A build log line that must stand out: a choice the user may not want."""
    print(f"{_colour('1;33', 'uwsgi-plugin-backend: warning:')} {message}", file=sys.stderr, flush=True)


def reports_errors(hook: F) -> F:
    """Make a PEP 517 hook end a BackendError with one message and exit status 1."""

    @functools.wraps(hook)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return hook(*args, **kwargs)
        except BackendError as error:
            print(file=sys.stderr)  # apart from the frontend's own output
            report(error)
            print(file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]
