"""The plugin sources a wheel carries (``ship-sources``, on by default), so
that ``uwsgi-plugin-backend build-missing`` can build, on the user's machine,
for a uwsgi the wheel has no build for: no index, no network, no reinstall.

Layout inside the import package: ``_sources/`` is the project root as the
build copies it (no dot-files, caches, virtual environments or build
directory), so ``../common`` paths keep their meaning there too; ``build/``,
``dist/`` and ``uwsgi --build-plugin`` outputs are left out as in the sdist.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..plugin_build.plugin import copy_project
from ..settings import Settings

SOURCES_DIR = "_sources"
# PEP 639's default license-files, which scikit-build-core also applies.
DEFAULT_LICENSE_FILES = ("LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")


def stage_sources(config: Settings, package_staging: Path, build_root: Path) -> None:
    """Copy the project's sources, pyproject.toml included, into ``package_staging/_sources``."""
    target = package_staging / SOURCES_DIR
    copy_project(config.root.resolve(), target, skip=build_root.resolve())
    for name in ("build", "dist"):  # outputs, unless a plugin lives there
        if (target / name).is_dir() and not any(d.relative_to(config.root.resolve()).parts[:1] == (name,) for d in config.plugin_dirs):
            shutil.rmtree(target / name)
    for leftover in target.rglob("*_plugin.so"):
        leftover.unlink()
    # An sdist's metadata is no source: a wheel built from the sdist carries what one built from the tree does.
    (target / "PKG-INFO").unlink(missing_ok=True)
    # License files are in the dist-info already (check-wheel-contents W002: duplicates).
    for pattern in DEFAULT_LICENSE_FILES if config.license_files is None else config.license_files:
        for path in target.glob(pattern):
            if path.is_file():
                path.unlink()
