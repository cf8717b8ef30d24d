"""uwsgi-plugin-backend: a PEP 517 build backend for uWSGI plugins.

Each hook reads the project's configuration and hands the work to one
module; errors a user can fix end as one ``uwsgi-plugin-backend: error:``
message and exit status 1.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import ConfigSettings
from .errors import reports_errors

__all__ = [
    "build_editable",
    "build_sdist",
    "get_requires_for_build_editable",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]


@reports_errors
def get_requires_for_build_wheel(config_settings: ConfigSettings | None = None) -> list[str]:
    from .wheel import skbuild, skbuild_settings

    return skbuild().get_requires_for_build_wheel(skbuild_settings(config_settings))


@reports_errors
def get_requires_for_build_sdist(config_settings: ConfigSettings | None = None) -> list[str]:
    from .wheel import skbuild, skbuild_settings

    return skbuild().get_requires_for_build_sdist(skbuild_settings(config_settings))


@reports_errors
def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: ConfigSettings | None = None) -> str:
    from .wheel import prepare_plugin_metadata

    return prepare_plugin_metadata(metadata_directory, config_settings)


@reports_errors
def build_wheel(
    wheel_directory: str, config_settings: ConfigSettings | None = None, metadata_directory: str | None = None
) -> str:
    from .wheel import build_plugin_wheel

    return build_plugin_wheel(wheel_directory, config_settings)


@reports_errors
def get_requires_for_build_editable(config_settings: ConfigSettings | None = None) -> list[str]:
    return get_requires_for_build_wheel(config_settings)


@reports_errors
def build_editable(
    wheel_directory: str, config_settings: ConfigSettings | None = None, metadata_directory: str | None = None
) -> str:
    """PEP 660: the plugins are built into a lasting build directory that the
    installed package reads; `uwsgi-plugin-backend rebuild` refreshes them."""
    from .wheel import build_plugin_editable

    return build_plugin_editable(wheel_directory, config_settings)


@reports_errors
def build_sdist(sdist_directory: str, config_settings: ConfigSettings | None = None) -> str:
    from .wheel import build_plugin_sdist

    return build_plugin_sdist(sdist_directory, config_settings)
