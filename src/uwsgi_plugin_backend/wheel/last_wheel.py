"""The no-change rebuild in a kept build directory: the last wheel built there,
handed back when nothing it was built from has changed.

A frontend runs the hook in a new interpreter, where running uwsgiplugin.py,
linking and importing the wheel writer cost ten times what this check does.
As cargo reruns a build script only when a file of its package changes, this
counts what a build reads: the project's files and the headers its last
compiles read outside it (by content, as the kept objects are counted), the
settings and pyproject.toml, each uwsgi binary's identity, the compiler, the
build variables, the interpreter, the backend and the libraries that write
the wheel. What uwsgiplugin.py may ask beyond that (pkg-config, a library
installed since) is not seen: removing the build directory builds afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .._version import __version__
from ..cache import written_aside
from ..errors import log
from ..settings import Settings
from ..target_uwsgi.find import ChosenUwsgi
from .files import place

# What uwsgiconfig.py, the compiler and the linker read from the environment
# (besides every UWSGI_* and PKG_CONFIG* variable). PATH and PYTHONPATH are left
# out: an isolated frontend names a new build environment in them every time.
BUILD_VARIABLES = ("CC", "CXX", "CPP", "CFLAGS", "CPPFLAGS", "CXXFLAGS", "LDFLAGS", "LIBS", "LIBRARY_PATH", "CPATH",
                   "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "SOURCE_DATE_EPOCH")
RECORD = "last-wheel.json"


def _is_build_directory(path: Path) -> bool:
    return (path / ".lock").is_file() or (path / RECORD).is_file()


def _project_files(root: Path, outputs: tuple[Path, ...]) -> dict[str, str | None] | str:
    """The content hash of each file the build's copy of the project could read
    (by content, as the kept objects are: an sdist made with SOURCE_DATE_EPOCH
    dates every file alike), leaving out the build's outputs (the build and
    wheel directories, wheels: pip wheel . writes into the project) and other
    build directories; else why that cannot be known."""
    from ..plugin_build._driver import file_hash
    from ..plugin_build.plugin import left_out

    files: dict[str, str | None] = {}
    for directory, subdirs, names in os.walk(root):
        here = Path(directory)
        # Directories as the build's copy leaves them out; dot-files count (.gitignore shapes the wheel).
        subdirs[:] = sorted(d for d in subdirs if not left_out(here / d) and here / d not in outputs
                            and not _is_build_directory(here / d))
        for name in sorted([*names, *subdirs]):
            path = here / name
            if path.is_symlink():
                return f"the project holds a link, {path}, whose target is not watched"
            if name in names and not name.endswith(".whl"):
                files[str(path.relative_to(root))] = file_hash(path)
    return files


def _outside(root: Path, named: str) -> bool:
    return not (root / named).resolve().is_relative_to(root)


def _backend_digest() -> str:
    """This backend's own code: a changed backend builds afresh, whatever its version says."""
    digest = hashlib.sha256(__version__.encode())
    package = Path(__file__).parents[1]
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".c", ".h"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _tool_versions() -> list[str]:
    """The distributions that write the wheel and choose its tag, by their
    dist-info names, found without importing them."""
    found = []
    for module, distribution in (("scikit_build_core", "scikit_build_core"), ("auditwheel", "auditwheel"),
                                 ("elftools", "pyelftools"), ("packaging", "packaging")):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            found += sorted(p.name for p in Path(spec.origin).parent.parent.glob(f"{distribution}-*.dist-info"))
    return found


def dependencies(build_dir: Path) -> dict[str, str | None]:
    """The files outside the build directory that the last compiles read, by
    content: what the .d files of gcc -MMD list by absolute path (headers
    reached by an absolute -I, a library's headers found by pkg-config)."""
    from ..plugin_build._driver import dependencies as listed
    from ..plugin_build._driver import file_hash

    found: dict[str, str | None] = {}
    for listing in sorted(build_dir.glob("abi_*/plugin-*/objects/*.d")):
        for name in listed(str(listing)):
            path = Path(name)
            if path.is_absolute() and not path.resolve().is_relative_to(build_dir.resolve()):
                found[name] = file_hash(path)  # None: gone
    return found


def build_inputs(settings: Settings, chosen: list[ChosenUwsgi], build_dir: Path,
                 wheel_directory: Path) -> dict[str, Any] | None:
    """All a build reads (as JSON), or None when it cannot be known (dynamic
    metadata, sources allowed outside the project, links, metadata files
    outside it): the build then runs, and says why."""
    from ..target_uwsgi.compiler import compiler
    from ..target_uwsgi.kit_cache import binary_identity
    from ..target_uwsgi.layouts import compiler_identity

    root = settings.root.resolve()
    files = _project_files(root, (build_dir.resolve(), wheel_directory.resolve()))
    reason = ("the project's metadata is dynamic" if settings.dynamic else
              "allow-outside-sources is set" if settings.allow_outside_sources else
              "pyproject.toml names a file outside the project" if any(_outside(root, n) for n in settings.metadata_files) else
              files if isinstance(files, str) else None)
    if reason:
        log(f"the last wheel in {build_dir} is not reused, whatever changed: {reason}")
        return None
    environment = {name: value for name, value in os.environ.items() if name in BUILD_VARIABLES
                   or (name.startswith(("UWSGI_", "PKG_CONFIG")) and not name.startswith("UWSGI_PLUGIN_BACKEND_"))}
    command = compiler()
    # How many compilers run, how much is logged, where the cache is and how long a build waits change no wheel.
    chosen_settings = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("jobs", "verbose", "given", "machine")}
    inputs = {
        "backend": _backend_digest(),
        "tools": _tool_versions(),
        "python": [sys.version, sys.base_prefix],
        "settings": chosen_settings,
        "uwsgi": [[str(target.path), binary_identity(target.path, settings.machine.uwsgi_timeout)] for target in chosen],
        "compiler": [command, compiler_identity(command)],
        "environment": sorted(environment.items()),
        "files": files,
        "dependencies": dependencies(build_dir),
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
    """Keep ``wheel``, built from ``inputs``, for the next build in ``build_dir``
    (with the dependencies its compiles listed)."""
    if wheel.resolve().is_relative_to((build_dir / "last-wheel").resolve()):
        return  # the wheel was asked for in the very directory it would be kept in: kept as it is
    inputs = {**inputs, "dependencies": dependencies(build_dir)}
    (build_dir / RECORD).unlink(missing_ok=True)  # never a record naming another wheel's copy
    shutil.rmtree(build_dir / "last-wheel", ignore_errors=True)
    (build_dir / "last-wheel").mkdir()
    with written_aside(build_dir / "last-wheel" / wheel.name) as partial:
        shutil.copyfile(wheel, partial)
    with written_aside(build_dir / RECORD) as partial:
        partial.write_text(json.dumps({"wheel": wheel.name, "inputs": inputs}, indent=1) + "\n")
