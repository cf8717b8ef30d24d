"""Choose the uwsgi binary a plugin is built for: the ones the settings name
(``-C uwsgi``, ``UWSGI_PLUGIN_BACKEND_UWSGI``, ``tool.uwsgi-plugin.uwsgi``:
settings.py resolves which), else the uwsgi installed with the user's Python,
then PATH (the runtime module's search, the same at run time)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendError, log, warn
from ..runtime_api import ENV_VAR
from ..runtime_api import find_default_uwsgi as runtime_find_default_uwsgi
from ..settings import TABLE

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

    @property
    def fallback(self) -> bool:
        """Found on PATH, the last place looked: maybe not the uwsgi the user will run."""
        return self.reason.startswith(FOUND_ON_PATH)


FOUND_ON_PATH = "found on PATH"


def warn_fallback(chosen: ChosenUwsgi) -> None:
    """Say, where it stands out, that the build is for the uwsgi PATH gave."""
    warn(f"{chosen.path} is the first uwsgi on PATH, the last place looked: none is installed with the Python "
         f"running this build ({sys.executable}) or with the program that started it. The wheel fits that uwsgi "
         f"only, and its name does not say so; to build for another, name it (-C uwsgi=PATH or {ENV_VAR}=PATH)")


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


def find_uwsgis(names: Sequence[str], origin: str, base: Path) -> list[ChosenUwsgi]:
    """The uwsgi binaries to build for: those ``names`` (given by ``origin``,
    relative to ``base``), else the default one; and why each was chosen."""
    if names:
        return [_resolve_named(name, base, origin) for name in names]
    return [find_default_uwsgi()]


def uwsgi_for_command(named: str | None) -> ChosenUwsgi:
    """The uwsgi a command outside a build means (info, list, args, ini,
    build-missing): ``--uwsgi``, else $UWSGI_PLUGIN_BACKEND_UWSGI, else the one
    the user runs (find_default_uwsgi)."""
    if named:
        return _resolve_named(named, Path.cwd(), "--uwsgi")
    if os.environ.get(ENV_VAR):
        return _resolve_named(os.environ[ENV_VAR], Path.cwd(), f"${ENV_VAR}")
    return find_default_uwsgi()


def find_default_uwsgi() -> ChosenUwsgi:
    """The uwsgi the user will run, as the runtime module finds it (the one
    installed with the user's Python, then PATH); the build log (and ``info``)
    says which ones another user could change, and so were passed over."""
    skipped: list[str] = []
    found = runtime_find_default_uwsgi(skipped)
    if found:
        for reason in dict.fromkeys(skipped):
            log(reason)
        return ChosenUwsgi(found[0], found[1])
    looked = [str(Path(sys.executable).parent / "uwsgi"), str(Path(sys.prefix) / "bin" / "uwsgi")]
    if os.environ.get("VIRTUAL_ENV"):
        looked.append(str(Path(os.environ["VIRTUAL_ENV"]) / "bin" / "uwsgi"))
    looked += ["bin/uwsgi of a virtual environment whose program started this build",
               "the user scripts directory (pip install --user)", f"PATH ({os.environ.get('PATH', '')})"]
    passed_over = "".join(f"Passed over: {reason}\n" for reason in dict.fromkeys(skipped))
    raise BackendError(
        "no uwsgi binary found to build the plugin for.\nLooked in:\n  " + "\n  ".join(dict.fromkeys(looked)) + "\n"
        + passed_over + HOW_TO_NAME_ONE
    )
