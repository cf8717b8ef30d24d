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
import shutil
import tempfile
from pathlib import Path

from .errors import BackendError, log
from .find_uwsgi import ChosenUwsgi, find_uwsgis
from .kit_cache import cache_root
from .locking import locked
from .settings import Settings, load_settings
from .staging import staged_package
from .uwsgi_builds import UwsgiBuild, compile_plugins
from .wheel import target_uwsgis, uwsgi_pins, write_wheel

SETTINGS_FILE = "editable-settings.json"


def editable_root(config: Settings) -> Path:
    if config.build_dir:
        return config.build_dir
    digest = hashlib.sha256(str(config.root.resolve()).encode()).hexdigest()[:12]
    return cache_root() / "editable" / f"{config.package}-{digest}"


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
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / ".lock", f"the editable build directory {root}"):
        return _build_in_place(config, chosen, root)


def _build_in_place(config: Settings, chosen: list[ChosenUwsgi], root: Path) -> tuple[list[UwsgiBuild], Path]:
    builds = compile_plugins(config, chosen, root, kept=True)
    # The installed package reads root/editable/uwsgi_builds, a link to the newest
    # set of builds: swapping the link is atomic, a reader sees the old set or the new.
    editable = root / "editable"
    editable.mkdir(exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=editable, prefix="builds-"))
    for build in builds:
        build.stage(config, fresh / "all")
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
    (root / SETTINGS_FILE).write_text(json.dumps(remembered, indent=2))
    log(f"editable builds in {builds_dir}; after a source change: uwsgi-plugin-backend rebuild {config.root}")
    return builds, builds_dir


def rebuild(project: Path, build_dir: str | None) -> Path:
    """Build an editable install's plugins again, for the binaries it was installed for."""
    config = load_settings(project.resolve(), {"build-dir": build_dir} if build_dir else {})
    root = editable_root(config)
    try:
        remembered = json.loads((root / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        raise BackendError(
            f"no editable install of {config.name} found (looked in {root}); install it first: pip install -e {project}"
            + ("" if build_dir else ", or name its -C build-dir with --build-dir")
        ) from None
    cwd = os.getcwd()
    os.chdir(config.root)  # relative -C paths were given from the project directory
    try:
        settings = load_settings(config.root, remembered["config_settings"])
        chosen = find_uwsgis(remembered["uwsgi"], "the editable install", config.root)
        return build_in_place(settings, chosen)[1]
    finally:
        os.chdir(cwd)
