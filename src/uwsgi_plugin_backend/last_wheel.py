"""The no-change rebuild in a kept build directory: the last wheel built there,
handed back when nothing it was built from has changed.

A frontend runs the hook in a new interpreter, where running uwsgiplugin.py,
linking and importing the wheel writer cost ten times what this check does.
As cargo reruns a build script only when a file of its package changes, this
counts what a build reads: the project's files (path, size, mtime, as make
does), the settings and pyproject.toml, each uwsgi binary's identity, the
compiler, the build variables, the interpreter and the backend itself. What
uwsgiplugin.py may ask beyond that (pkg-config, a library installed since) is
not seen, as the kept objects' system headers are not: removing the build
directory builds afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .errors import log
from .find_uwsgi import ChosenUwsgi
from .settings import Settings
from .wheel_files import place, written_aside

# What uwsgiconfig.py, the compiler and the linker read from the environment
# (besides every UWSGI_* and PKG_CONFIG* variable). PATH and PYTHONPATH are left
# out: an isolated frontend names a new build environment in them every time.
BUILD_VARIABLES = ("CC", "CXX", "CPP", "CFLAGS", "CPPFLAGS", "CXXFLAGS", "LDFLAGS", "LIBS", "LIBRARY_PATH", "CPATH",
                   "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "SOURCE_DATE_EPOCH")
RECORD = "last-wheel.json"


def _project_files(root: Path, outputs: tuple[Path, ...]) -> list[tuple[str, int, int]] | None:
    """(path, size, mtime) of each file the build's copy of the project could
    read, but the build's own ``outputs`` (the build directory, the wheel
    directory: python -m build writes into the project's dist/); None when a
    link could lead anywhere (its target is not watched)."""
    from .plugin_build import _is_virtualenv

    files = []
    for directory, subdirs, names in os.walk(root):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__pycache__"
                            and here / d not in outputs and not _is_virtualenv(here / d))
        for name in sorted([*names, *subdirs]):
            path = here / name
            if path.is_symlink():
                return None
            if name in names:
                status = path.stat()
                files.append((str(path.relative_to(root)), status.st_size, status.st_mtime_ns))
    return files


def _backend_digest() -> str:
    """This backend's own code: a changed backend builds afresh, whatever its version says."""
    digest = hashlib.sha256(__version__.encode())
    package = Path(__file__).parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".c", ".h"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_inputs(settings: Settings, chosen: list[ChosenUwsgi], build_dir: Path,
                 wheel_directory: Path) -> dict[str, Any] | None:
    """All a build reads (as JSON), or None when it cannot be known (dynamic
    metadata, sources allowed outside the project, links)."""
    import scikit_build_core

    from .abi_layout import compiler_identity
    from .c_compiler import compiler
    from .kit_cache import binary_identity

    if settings.project.get("dynamic") or settings.allow_outside_sources:
        return None
    files = _project_files(settings.root.resolve(), (build_dir.resolve(), wheel_directory.resolve()))
    if files is None:
        return None
    environment = {name: value for name, value in os.environ.items() if name in BUILD_VARIABLES
                   or (name.startswith(("UWSGI_", "PKG_CONFIG")) and not name.startswith("UWSGI_PLUGIN_BACKEND_"))}
    command = compiler()
    inputs = {
        "backend": _backend_digest(),
        "scikit-build-core": scikit_build_core.__version__,
        "python": [sys.version, sys.base_prefix],
        "settings": dataclasses.asdict(settings),
        "uwsgi": [[str(target.path), binary_identity(target.path)] for target in chosen],
        "compiler": [command, compiler_identity(command)],
        "environment": sorted(environment.items()),
        "files": files,
    }
    return json.loads(json.dumps(inputs, default=str))  # as read back from the record


def reuse(build_dir: Path, inputs: dict[str, Any], wheel_directory: Path) -> str | None:
    """Place the last wheel built in ``build_dir`` into ``wheel_directory`` when
    it was built from ``inputs``; its name, else None."""
    try:
        record = json.loads((build_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    name = record.get("wheel") if isinstance(record, dict) and record.get("inputs") == inputs else None
    stored = build_dir / "last-wheel" / str(name)
    if not name or "/" in name or not stored.is_file():
        return None
    out = build_dir / "last-wheel" / "out"
    out.mkdir(exist_ok=True)
    shutil.copyfile(stored, out / name)
    place(out / name, wheel_directory)
    log(f"{name} reused: nothing has changed since the last build in {build_dir} (project files, settings, uwsgi, "
        "compiler, build variables); remove the directory to build afresh")
    return name


def remember(build_dir: Path, inputs: dict[str, Any], wheel: Path) -> None:
    """Keep ``wheel``, built from ``inputs``, for the next build in ``build_dir``."""
    (build_dir / RECORD).unlink(missing_ok=True)  # never a record naming another wheel's copy
    shutil.rmtree(build_dir / "last-wheel", ignore_errors=True)
    (build_dir / "last-wheel").mkdir()
    with written_aside(build_dir / "last-wheel" / wheel.name) as partial:
        shutil.copyfile(wheel, partial)
    with written_aside(build_dir / RECORD) as partial:
        partial.write_text(json.dumps({"wheel": wheel.name, "inputs": inputs}, indent=1) + "\n")
