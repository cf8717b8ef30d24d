"""``uwsgi-plugin-backend build-missing DIST [--uwsgi PATH]``: build, from the
sources an installed wheel carries, the build its uwsgi needs when the wheel
has none; no index, no network, no reinstall.

The build goes where ``plugin_dir()`` looks: into the installed package when
it is writable (and into the distribution's RECORD, so ``pip uninstall``
removes it), else into the user cache (``fallback_builds_dir``). It is staged
aside and renamed into place whole, so a failure changes nothing; concurrent
runs wait for each other, and all but the first find the build made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib import metadata
from pathlib import Path

from ..cache import can_write, directory_aside, write_atomically
from ..errors import BackendError, log
from ..locking import locked
from ..runtime_api import (
    BUILDS_DIR,
    EDITABLE_POINTER,
    ENV_VAR,
    CannotAsk,
    abi_fits,
    binary_abi,
    fallback_builds_dir,
    record_fits,
    trusted_uwsgi,
    uwsgi_env,
)
from ..settings import MachineSettings, load_machine_settings, load_settings
from ..target_uwsgi.find import ChosenUwsgi, uwsgi_for_command
from ..wheel.files import record_row, record_text
from ..wheel.shipped_sources import SOURCES_DIR


@dataclasses.dataclass(frozen=True)
class Environment:
    """The Python environment that has the plugin installed: this one, or the one of
    another interpreter (``--python``), as that interpreter sees itself."""

    python: Path
    prefix: str
    path: list[str]  # its sys.path, where its distributions are found
    scripts: str  # its scripts directory (a venv's bin/)

    @classmethod
    def this(cls) -> Environment:
        return cls(Path(sys.executable), sys.prefix, sys.path, sysconfig.get_path("scripts"))

    @classmethod
    def of(cls, python: str) -> Environment:
        """Ask ``python`` (with the environment it runs under in uwsgi: no PYTHONPATH and kin)."""
        path = Path(shutil.which(python) or python).absolute()  # a venv's bin/python, not where its link leads
        try:
            result = subprocess.run([str(path), "-c", ASK_ENVIRONMENT], capture_output=True, text=True, timeout=60,
                                    env=uwsgi_env(), stdin=subprocess.DEVNULL, check=False)
            answer = json.loads(result.stdout) if result.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, ValueError) as error:
            raise BackendError(f"cannot ask --python {python} about its environment: {error}") from None
        if not isinstance(answer, dict):
            raise BackendError(f"--python {python} is not a Python that answers (exit status {result.returncode}: "
                               f"{result.stderr.strip()[-300:]})")
        return cls(path, answer["prefix"], answer["path"], answer["scripts"])


ASK_ENVIRONMENT = ("import json, sys, sysconfig; "
                   "print(json.dumps({'prefix': sys.prefix, 'path': sys.path, 'scripts': sysconfig.get_path('scripts')}))")


def _distribution(name: str, env: Environment) -> metadata.Distribution:
    for dist in metadata.distributions(name=name, path=env.path):
        return dist
    raise BackendError(f"no distribution named {name!r} is installed in the environment {env.prefix} of {env.python}; "
                       "name the Python that has the plugin installed: --python /path/to/venv/bin/python")


def _package_dir(dist: metadata.Distribution) -> Path:
    """The installed import package that holds the runtime module."""
    runtime = [file for file in dist.files or [] if file.name == "_uwsgi_plugin.py"]
    if not runtime:
        raise BackendError(f"{dist.name} is not a uWSGI plugin wheel built by uwsgi-plugin-backend (it has no _uwsgi_plugin.py)")
    return Path(runtime[0].locate()).parent


def _record_file(dist: metadata.Distribution) -> Path | None:
    for file in dist.files or []:
        if file.name == "RECORD" and file.parent.name.endswith(".dist-info"):
            return Path(file.locate())
    return None


def _target(uwsgi: str | None, other: Environment | None = None) -> ChosenUwsgi:
    """The uwsgi to build for: as any command means it, but with --python and
    nothing named, the one installed with that Python, as the runtime finds it there."""
    if uwsgi or os.environ.get(ENV_VAR) or other is None:
        return uwsgi_for_command(uwsgi)
    skipped: list[str] = []
    for directory in dict.fromkeys([other.python.parent, Path(other.scripts), Path(other.prefix) / "bin"]):
        found = trusted_uwsgi(directory, f"installed with --python {other.python}", skipped)
        if found:
            return ChosenUwsgi(found[0], found[1])
    raise BackendError(f"no uwsgi installed with {other.python} (looked in {other.python.parent} and "
                       f"{other.scripts}){''.join('; ' + reason for reason in skipped)}; name one: --uwsgi PATH")


def _fitting(package_dir: Path, wanted: dict[str, str]) -> Path | None:
    """A build already there that fits the uwsgi described by ``wanted`` (binary_abi())."""
    for directory in (package_dir / BUILDS_DIR.name, fallback_builds_dir(package_dir)):
        for record in directory.glob("*/build.json"):
            try:
                if record_fits(json.loads(record.read_text()), wanted):
                    return record.parent
            except (OSError, ValueError):
                continue
    return None


def _same_abi(builds_dir: Path, wanted: dict[str, str]) -> bool:
    """Whether ``builds_dir`` holds a build of ``wanted``'s ABI (one that _fitting() passed over)."""
    for record in builds_dir.glob("*/build.json"):
        try:
            if abi_fits(json.loads(record.read_text()), wanted):
                log(f"{record.parent} is for this ABI but cannot serve here; the new build goes beside it, into the user cache")
                return True
        except (OSError, ValueError):
            continue
    return False


def _add_to_record(record: Path, files: list[Path]) -> None:
    """List the new files in RECORD (written aside, then renamed), so pip uninstall removes them."""
    rows = [record_row(os.path.relpath(path, record.parent.parent), path.read_bytes()) for path in files]
    text = record.read_text()
    if text and not text.endswith("\n"):
        text += "\n"
    write_atomically(record, text + record_text(rows))


def build_missing(distribution: str, uwsgi: str | None, python: str | None = None) -> Path:
    """Build ``distribution``'s plugins for ``uwsgi`` (default: the one the user
    runs) unless a build fits already; return the directory that holds them.
    ``python``: the plugin is installed in that interpreter's environment, not
    this one (a backend installed as a tool of its own, by uv tool or pipx)."""
    other = Environment.of(python) if python else None
    dist = _distribution(distribution, other or Environment.this())
    package_dir = _package_dir(dist)
    if (package_dir / EDITABLE_POINTER.name).exists():
        raise BackendError(f"{dist.name} is an editable install: build it again from its project instead "
                           "(uwsgi-plugin-backend rebuild DIR, or pip install -e DIR -C uwsgi=PATH)")
    sources = package_dir / SOURCES_DIR
    if not (sources / "pyproject.toml").is_file():
        raise BackendError(f"the installed {dist.name} carries no plugin sources (built with ship-sources = false, "
                           f"or by an older backend); build it from source: {ENV_VAR}=/path/to/uwsgi "
                           f"pip install --force-reinstall --no-binary {dist.name} --no-cache-dir {dist.name}")
    target = _target(uwsgi, other)
    try:
        wanted = binary_abi(str(target.path))
    except CannotAsk as error:
        raise BackendError(f"{error}; name a working uwsgi binary with --uwsgi PATH") from None
    found = _fitting(package_dir, wanted)
    if found:
        log(f"{dist.name} already has a build for {target.path} ({wanted['summary']}) in {found}")
        return found
    record = _record_file(dist)
    # Into the package only when its RECORD can list the build too (so pip uninstall removes it), and when
    # the wheel's build of this ABI, which cannot serve here (a newer glibc), does not hold the directory.
    in_package = (record is not None and can_write(package_dir / BUILDS_DIR.name) and can_write(record.parent)
                  and not _same_abi(package_dir / BUILDS_DIR.name, wanted))
    destination = package_dir / BUILDS_DIR.name if in_package else fallback_builds_dir(package_dir)
    machine = load_machine_settings()
    lock = machine.cache_dir.path() / "locks" / f"build-missing-{hashlib.sha256(str(destination).encode()).hexdigest()[:16]}.lock"
    with locked(lock, f"the builds of {dist.name}", machine.lock_timeout):
        found = _fitting(package_dir, wanted)  # another run may have built it while we waited
        if found:
            log(f"another build-missing run built it meanwhile: {found}")
            return found
        return _build(dist, sources, target, destination, in_package, machine)


def _build(dist: metadata.Distribution, sources: Path, target: ChosenUwsgi, destination: Path, in_package: bool,
           machine: MachineSettings) -> Path:
    from ..plugin_build.builds import compile_plugins

    log(f"building {dist.name} {dist.version} from the sources its wheel carries, for {target.path} ({target.reason})")
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-missing-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(sources, project)
        config = load_settings(project, machine=machine)
        builds = compile_plugins(config, [target], Path(tmp) / "work", kept=False)  # the uwsgi's first, then abi-variants
        placed = [destination / build.abi.build_dir_name for build in builds]
        try:
            destination.mkdir(parents=True, exist_ok=True)
            for build, final in zip(builds, placed):
                with directory_aside(final) as staging:
                    build.stage(config.name, staging)
        except OSError as error:
            raise BackendError(f"cannot write the build into {destination}: {error.strerror or error}") from None
    if in_package:
        record = _record_file(dist)
        assert record is not None
        _add_to_record(record, sorted(path for directory in placed for path in directory.iterdir()))
    for directory in placed:
        log(f"wrote {directory}")
    return placed[0]
