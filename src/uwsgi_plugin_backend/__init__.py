"""uwsgi-plugin-backend: a PEP 517 build backend for uWSGI plugins.

Each hook reads the settings once (pyproject.toml, -C config settings, the
environment) and hands them to one builder; errors a user can fix end as one
``uwsgi-plugin-backend: error:`` message and exit status 1.
"""

from __future__ import annotations

from pathlib import Path

from ._version import __version__ as __version__
from .errors import reports_errors
from .settings import ConfigSettings, Settings, load_settings

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]


def _settings(config_settings: ConfigSettings | None) -> Settings:
    return load_settings(Path.cwd(), config_settings)


@reports_errors
def get_requires_for_build_wheel(config_settings: ConfigSettings | None = None) -> list[str]:
    from .wheel.skbuild import skbuild, skbuild_settings

    requires: list[str] = skbuild().get_requires_for_build_wheel(skbuild_settings(_settings(config_settings)))
    return requires


@reports_errors
def get_requires_for_build_sdist(config_settings: ConfigSettings | None = None) -> list[str]:
    from .wheel.skbuild import skbuild, skbuild_settings

    requires: list[str] = skbuild().get_requires_for_build_sdist(skbuild_settings(_settings(config_settings)))
    return requires


@reports_errors
def get_requires_for_build_editable(config_settings: ConfigSettings | None = None) -> list[str]:
    return get_requires_for_build_wheel(config_settings)


@reports_errors
def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: ConfigSettings | None = None) -> str:
    from .wheel.sdist import prepare_plugin_metadata

    return prepare_plugin_metadata(_settings(config_settings), Path(metadata_directory))


@reports_errors
def build_wheel(
    wheel_directory: str, config_settings: ConfigSettings | None = None, metadata_directory: str | None = None
) -> str:
    from .wheel.builder import build_plugin_wheel

    return build_plugin_wheel(_settings(config_settings), Path(wheel_directory))


@reports_errors
def build_editable(
    wheel_directory: str, config_settings: ConfigSettings | None = None, metadata_directory: str | None = None
) -> str:
    """PEP 660: the plugins are built into a lasting build directory that the
    installed package reads; `uwsgi-plugin-backend rebuild` refreshes them."""
    from .wheel.editable import build_plugin_editable

    return build_plugin_editable(_settings(config_settings), Path(wheel_directory))


@reports_errors
def build_sdist(sdist_directory: str, config_settings: ConfigSettings | None = None) -> str:
    from .wheel.sdist import build_plugin_sdist

    return build_plugin_sdist(_settings(config_settings), Path(sdist_directory))
