"""What the sdist leaves out: what is not source.

scikit-build-core already reads every ``.gitignore`` (and ``.git/info/exclude``
in a git checkout) and drops VCS and cache directories; this adds, as
``sdist.exclude`` patterns, what a plugin project holds that no ignore file
may mention: virtual environments under any name, a ``-C build-dir`` inside
the project, ``build/``, ``dist/``, ``wheelhouse/`` (the publishing
workflow's output) and any wheel, and the leftovers of
``uwsgi --build-plugin``. ``[tool.scikit-build] sdist.include`` brings a file
back (include wins over exclude).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from ..errors import log
from ..settings import Settings

ALWAYS_EXCLUDED = [
    "/build/",
    "/dist/",
    "/wheelhouse/",  # where the workflow `init --ci github` writes builds the wheel
    "*.whl",  # a built wheel is never source
    "/.venv/",
    "/.test-cache/",
    ".uwsgi_plugins_builder/",  # uwsgi --build-plugin's work directory
    "*_plugin.so",  # uwsgi --build-plugin's output
]


def not_source(config: Settings) -> list[str]:
    """gitignore-style patterns, relative to the project root, for sdist.exclude."""
    patterns = list(ALWAYS_EXCLUDED)
    for directory, subdirs, files in os.walk(config.root):
        here = Path(directory)
        venv = "pyvenv.cfg" in files  # a virtual environment, whatever its name
        kept_build_dir = ".lock" in files and any(name.startswith("abi_") for name in subdirs)  # an old -C build-dir
        if (venv or kept_build_dir) and here != config.root:
            patterns.append(f"/{here.relative_to(config.root).as_posix()}/")
            subdirs.clear()
        subdirs[:] = [name for name in subdirs if name != ".git"]
    path = config.build_dir
    if path and path.is_relative_to(config.root.absolute()) and path != config.root.absolute():
        patterns.append(f"/{path.relative_to(config.root.absolute()).as_posix()}/")
    # Given as a config setting, this list replaces the project's own: keep those too.
    value = config.skbuild.get("sdist.exclude", [])
    given = [pattern for text in ([value] if isinstance(value, str) else value) for pattern in text.split(";")]
    return [*config.sdist_exclude, *given, *patterns]


def log_sdist_contents(sdist: Path) -> None:
    """Name every file the sdist holds, so what ships is never a surprise."""
    with tarfile.open(sdist) as archive:
        names = sorted(member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile())
    log(f"sdist holds {len(names)} files: {', '.join(names)}")
