"""Editable installs (PEP 660, ``pip install -e .``).

The plugins are built into a build directory that outlives the install
(``-C build-dir``, else one per project in the user's cache); the installed
package's runtime module reads its builds from there (``_editable.json``).
After a source change, ``uwsgi-plugin-backend rebuild`` builds again in the
same place, incrementally, for the same uwsgi binaries.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from ..cache import writable_directory, write_atomically
from ..errors import BackendError, log
from ..locking import locked
from ..plugin_build.builds import UwsgiBuild, compile_plugins
from ..runtime_api import CACHE_ENV
from ..settings import Settings, load_settings
from ..target_uwsgi.find import ChosenUwsgi, find_uwsgis
from .builder import target_uwsgis, uwsgi_pins, write_wheel
from .staging import staged_package

SETTINGS_FILE = "editable-settings.json"



def target_environment() -> str | None:
    """The environment an editable install goes into: pip runs the build hooks
    with the interpreter it installs for (its isolated build only adds paths),
    so sys.prefix is that environment, and `rebuild` run from it agrees. uv
    builds in a throwaway environment and names no target: None."""
    if os.environ.get("UV") and os.environ.get("VIRTUAL_ENV") == sys.prefix and "builds-v" in sys.prefix:
        return None
    return os.path.realpath(sys.prefix)


def editable_root(config: Settings) -> Path:
    """-C build-dir, else one directory per project and environment: two venvs
    installing one checkout must not replace each other's builds."""
    if config.build_dir:
        return config.build_dir
    environment = target_environment()
    if environment is None:
        log("the installing environment is unknown (uv builds elsewhere): its editable builds are shared with other "
            "uv installs of this project; -C build-dir=PATH gives each environment its own")
    identity = f"{config.root.resolve()}\0{environment or ''}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return config.machine.cache_dir.path() / "editable" / f"{config.package}-{digest}"


def installed_pointer(package: str) -> Path | None:
    """The _editable.json of ``package`` installed in this environment, if any."""
    for key in ("platlib", "purelib"):
        pointer = Path(sysconfig.get_paths()[key]) / package / "_editable.json"
        if pointer.is_file():
            return pointer
    return None


def build_plugin_editable(settings: Settings, wheel_directory: Path) -> str:
    """PEP 660: a wheel whose package reads its builds from the editable build directory."""
    chosen = target_uwsgis(settings)
    pins = uwsgi_pins(settings, chosen)
    builds, builds_dir = build_in_place(settings, chosen)
    with staged_package(settings) as staging:
        (staging / "_editable.json").write_text(json.dumps({"builds_dir": str(builds_dir)}) + "\n")
        return write_wheel(settings, builds, staging, wheel_directory, pins)


def build_in_place(config: Settings, chosen: list[ChosenUwsgi]) -> tuple[list[UwsgiBuild], Path]:
    """Build the plugins into the editable build directory; return the builds and
    the directory the installed package reads them from."""
    root = editable_root(config)
    fix = ("name a writable one: pip install -e . -C build-dir=PATH" if config.build_dir else
           f"set {CACHE_ENV} to a writable directory, or pass -C build-dir=PATH")
    writable_directory(root, f"cannot write the editable build directory {root}", fix)
    with locked(root / ".lock", f"the editable build directory {root}", config.machine.lock_timeout):
        return _build_in_place(config, chosen, root)


def _build_in_place(config: Settings, chosen: list[ChosenUwsgi], root: Path) -> tuple[list[UwsgiBuild], Path]:
    builds = compile_plugins(config, chosen, root, kept=True)
    # The installed package reads root/editable/uwsgi_builds, a link to the newest
    # set of builds: swapping the link is atomic, a reader sees the old set or the new.
    editable = root / "editable"
    editable.mkdir(exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=editable, prefix="builds-"))
    for build in builds:
        build.stage(config.name, fresh / "all" / build.abi.build_dir_name)
    builds_dir = editable / "uwsgi_builds"
    link = editable / ".uwsgi_builds.link"
    link.unlink(missing_ok=True)
    link.symlink_to(fresh.name + "/all", target_is_directory=True)
    if builds_dir.exists() and not builds_dir.is_symlink():
        shutil.rmtree(builds_dir)
    os.replace(link, builds_dir)
    for old in editable.glob("builds-*"):
        if old != fresh:
            shutil.rmtree(old, ignore_errors=True)
    remembered = {"project": str(config.root), "uwsgi": [str(c.path) for c in chosen],
                  "config_settings": {k: v for k, v in config.given.items() if k != "uwsgi"}}
    write_atomically(root / SETTINGS_FILE, json.dumps(remembered, indent=2))
    log(f"editable builds in {builds_dir}; after a source change: uwsgi-plugin-backend rebuild {config.root}")
    return builds, builds_dir


def _installed_root(config: Settings) -> tuple[Path, str]:
    """The build directory the editable install in this environment reads, and how it was found."""
    pointer = installed_pointer(config.package)
    if pointer is None:
        return editable_root(config), f"no editable install of {config.package} in this environment ({sys.prefix})"
    try:
        builds_dir = Path(json.loads(pointer.read_text())["builds_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return editable_root(config), f"{pointer} is unreadable"
    # builds_dir is ROOT/editable/uwsgi_builds (see _build_in_place).
    return builds_dir.parent.parent, f"the editable install in this environment reads {builds_dir}"


def rebuild(project: Path, build_dir: str | None) -> Path:
    """Build an editable install's plugins again, for the binaries it was installed for."""
    config = load_settings(project.resolve(), {"build-dir": build_dir} if build_dir else {})
    if build_dir:
        root, found = editable_root(config), f"--build-dir {build_dir}"
    else:
        root, found = _installed_root(config)
    try:
        remembered = json.loads((root / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        reinstall = f"{shlex.quote(sys.executable)} -m pip install -e {shlex.quote(str(project))}"
        raise BackendError(
            f"cannot rebuild {config.name}: {found}, and {root} holds no editable build "
            f"(the cache moved or was cleared, or it was installed elsewhere); install it again: {reinstall}"
            + ("" if build_dir else ", or name its -C build-dir with --build-dir")
        ) from None
    if remembered.get("project") != str(config.root):
        raise BackendError(
            f"the editable install of {config.package} in this environment is of {remembered.get('project')}, "
            f"not {config.root}: rebuild that one, or install this one: {shlex.quote(sys.executable)} -m pip install -e "
            f"{shlex.quote(str(project))}"
        )
    cwd = os.getcwd()
    os.chdir(config.root)  # relative -C paths were given from the project directory
    try:
        settings = load_settings(config.root, remembered["config_settings"])
        chosen = find_uwsgis(remembered["uwsgi"], "the editable install", config.root)
        return build_in_place(settings, chosen)[1]
    finally:
        os.chdir(cwd)
