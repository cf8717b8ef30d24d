"""Choose the uwsgi binary a plugin is built for: the ones the settings name
(``-C uwsgi``, ``UWSGI_PLUGIN_BACKEND_UWSGI``, ``tool.uwsgi-plugin.uwsgi``:
settings.py resolves which), else the uwsgi beside the interpreter running
the build, then PATH."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import BackendError
from .runtime._uwsgi_plugin import ENV_VAR
from .settings import TABLE

HOW_TO_NAME_ONE = (
    "Name the uwsgi to build for in one of three ways:\n"
    "  pip wheel . -C uwsgi=/path/to/uwsgi        (config setting; python -m build -C uwsgi=...)\n"
    f"  {ENV_VAR}=/path/to/uwsgi       (environment variable)\n"
    f"  [{TABLE}] uwsgi = \"/path/to/uwsgi\"   (pyproject.toml)\n"
    "or install one where the build looks: pip install uwsgi"
)


@dataclasses.dataclass(frozen=True)
class ChosenUwsgi:
    path: Path
    reason: str


def _resolve_named(name: str, base: Path, source: str) -> ChosenUwsgi:
    """A path (relative to ``base``) or a bare command name looked up on PATH."""
    if os.sep in name:
        path = base / Path(name).expanduser()
        if not path.is_file():
            raise BackendError(f"the uwsgi named by {source} does not exist: {path}\n{HOW_TO_NAME_ONE}")
        if not os.access(path, os.X_OK):
            raise BackendError(f"the uwsgi named by {source} is not executable: {path}; chmod +x it or name another")
        return ChosenUwsgi(path.absolute(), f"named by {source}")
    found = shutil.which(name)
    if found is None:
        raise BackendError(f"the uwsgi named by {source} ({name!r}) is not on PATH\n{HOW_TO_NAME_ONE}")
    return ChosenUwsgi(Path(found), f"named by {source} ({name!r}), found on PATH")


def interpreter_bin_dirs() -> list[Path]:
    """Where a uwsgi installed with the running interpreter's pip lives.

    Not resolved: a virtual environment's python is a symlink to the base one,
    and it is the environment's own bin/ we want. VIRTUAL_ENV covers frontends
    such as ``python -m build`` that run the backend in an environment of their own.
    """
    dirs = [Path(sys.executable).parent, Path(sys.prefix) / "bin"]
    if os.environ.get("VIRTUAL_ENV"):
        dirs.append(Path(os.environ["VIRTUAL_ENV"]) / "bin")
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def find_uwsgis(names: Sequence[str], origin: str, base: Path) -> list[ChosenUwsgi]:
    """The uwsgi binaries to build for: those ``names`` (given by ``origin``,
    relative to ``base``), else the default one; and why each was chosen."""
    if names:
        return [_resolve_named(name, base, origin) for name in names]
    return [find_default_uwsgi()]


def find_default_uwsgi() -> ChosenUwsgi:
    """The uwsgi the user will run: beside the interpreter running the build, then on PATH."""
    looked = []
    for directory in interpreter_bin_dirs():
        candidate = directory / "uwsgi"
        looked.append(str(candidate))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return ChosenUwsgi(candidate, f"installed beside the interpreter {sys.executable}")
    found = shutil.which("uwsgi")
    if found:
        return ChosenUwsgi(Path(found), "found on PATH")
    looked.append(f"PATH ({os.environ.get('PATH', '')})")
    raise BackendError(
        "no uwsgi binary found to build the plugin for.\nLooked in:\n  "
        + "\n  ".join(looked)
        + "\n"
        + HOW_TO_NAME_ONE
    )
