"""Driving scikit-build-core, which writes the wheels, sdists and metadata:
its settings for a CMake-free platform wheel of the staged package."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ..plugin_build.entry_points import user_package_dir
from ..settings import Settings


def skbuild() -> ModuleType:
    """scikit_build_core.build; it parses pyproject.toml on import, so it is
    imported only after load_settings() has (a bad file is then our clear error)."""
    from scikit_build_core import build

    return build


def skbuild_settings(settings: Settings, tags: list[str] | None = None) -> dict[str, str | list[str]]:
    """scikit-build-core's settings: the user's own -C keys for it, and ours."""
    from .platform_tags import plain_platform_tag

    return {
        **settings.skbuild,
        "wheel.cmake": "false",
        "wheel.platlib": "true",
        "wheel.py-api": "py3",
        "wheel.tags": ";".join(tags or [f"py3-none-{plain_platform_tag()}"]),
        # No CMake runs; naming a version stops scikit-build-core looking for CMakeLists.txt.
        "cmake.version": ">=3.15",
    }


def package_settings(settings: Settings, staging: Path) -> dict[str, str]:
    """Ship the staged files as the import package, beside the project's own
    package of the same name when there is one (its files win)."""
    own = user_package_dir(settings.root, settings.package)
    if own is None:
        return {"wheel.packages": str(staging)}
    return {
        "wheel.packages": str(own.relative_to(settings.root)),
        f"wheel.force-include.{staging}": settings.package,
    }
