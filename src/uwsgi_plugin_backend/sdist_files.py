"""What the sdist leaves out: what is not source.

scikit-build-core already reads every ``.gitignore`` (and ``.git/info/exclude``
in a git checkout) and drops VCS and cache directories; this adds, as
``sdist.exclude`` patterns, what a plugin project holds that no ignore file
may mention: virtual environments under any name, a ``-C build-dir`` inside
the project, ``build/`` and ``dist/``, and the leftovers of
``uwsgi --build-plugin``. ``[tool.scikit-build] sdist.include`` brings a file
back (include wins over exclude).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from .config import ConfigSettings, ProjectConfig, load_pyproject, setting_values
from .errors import log

ALWAYS_EXCLUDED = [
    "/build/",
    "/dist/",
    "/.venv/",
    "/.test-cache/",
    ".uwsgi_plugins_builder/",  # uwsgi --build-plugin's work directory
    "*_plugin.so",  # uwsgi --build-plugin's output
]


def not_source(config: ProjectConfig, config_settings: ConfigSettings | None) -> list[str]:
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
    for build_dir in setting_values(config_settings, "build-dir"):
        path = Path(build_dir).absolute()
        if path.is_relative_to(config.root.absolute()) and path != config.root.absolute():
            patterns.append(f"/{path.relative_to(config.root.absolute()).as_posix()}/")
    # Given as a config setting, this list replaces the project's own: keep those too.
    own = load_pyproject(config.root).get("tool", {}).get("scikit-build", {}).get("sdist", {}).get("exclude", [])
    given = [pattern for value in setting_values(config_settings, "sdist.exclude") for pattern in value.split(";")]
    return [*own, *given, *patterns]


def log_sdist_contents(sdist: Path) -> None:
    """Name every file the sdist holds, so what ships is never a surprise."""
    with tarfile.open(sdist) as archive:
        names = sorted(member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile())
    log(f"sdist holds {len(names)} files: {', '.join(names)}")
