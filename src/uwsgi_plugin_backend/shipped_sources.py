"""The plugin sources a wheel carries (``ship-sources``, on by default), so
that ``uwsgi-plugin-backend build-missing`` can build, on the user's machine,
for a uwsgi the wheel has no build for: no index, no network, no reinstall.

Layout inside the import package: ``_sources/pyproject.toml`` and each plugin
directory at its path relative to the project (``_sources/`` itself for
``plugins = ["."]``), copied as the build copies it (no dot-files, caches,
virtual environments or build directory).
"""

from __future__ import annotations

from pathlib import Path

from .config import ProjectConfig
from .plugin_build import copy_plugin_dir

SOURCES_DIR = "_sources"
# PEP 639's default license-files, which scikit-build-core also applies.
DEFAULT_LICENSE_FILES = ("LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")


def stage_sources(config: ProjectConfig, package_staging: Path, build_root: Path) -> None:
    """Copy the project's plugin sources and pyproject.toml into ``package_staging/_sources``."""
    target = package_staging / SOURCES_DIR
    # Deepest last: "." first, so copytree never meets a directory another copy made.
    for plugin_dir in sorted(config.plugin_dirs, key=lambda path: len(path.parts)):
        relative = plugin_dir.relative_to(config.root.resolve())
        destination = target / relative
        if destination.exists():  # inside a plugin directory already copied
            continue
        copy_plugin_dir(plugin_dir, destination, skip=build_root.resolve())
        # An sdist's metadata is no source: a wheel built from the sdist carries what one built from the tree does.
        (destination / "PKG-INFO").unlink(missing_ok=True)
    # License files are in the dist-info already (check-wheel-contents W002: duplicates).
    patterns = config.project.get("license-files")
    for pattern in patterns if isinstance(patterns, list) else DEFAULT_LICENSE_FILES:
        for path in target.glob(pattern):
            if path.is_file():
                path.unlink()
