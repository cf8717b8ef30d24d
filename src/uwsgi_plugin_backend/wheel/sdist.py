"""The sdist and the prepared metadata, both written by scikit-build-core
once the project is known to build (its entry points checked)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..plugin_build.builds import first_kit_dir, plugin_names
from ..plugin_build.entry_points import check_entry_points
from ..settings import Settings
from .files import place
from .sdist_files import log_sdist_contents, not_source
from .skbuild import skbuild, skbuild_settings


def build_plugin_sdist(settings: Settings, sdist_directory: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        check_entry_points(settings, plugin_names(settings, Path(tmp), first_kit_dir(settings, Path(tmp))))
        out = Path(tmp) / "out"
        skbuild_config = {**skbuild_settings(settings), "sdist.exclude": not_source(settings)}
        sdist_name: str = skbuild().build_sdist(str(out), skbuild_config)
        log_sdist_contents(out / sdist_name)
        place(out / sdist_name, sdist_directory)
    return sdist_name


def prepare_plugin_metadata(settings: Settings, metadata_directory: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        check_entry_points(settings, plugin_names(settings, Path(tmp), first_kit_dir(settings, Path(tmp))))
    dist_info: str = skbuild().prepare_metadata_for_build_wheel(str(metadata_directory), skbuild_settings(settings))
    if settings.pin_uwsgi:
        from .builder import target_uwsgis
        from .pins import pin_metadata_dir, uwsgi_pins

        pins = uwsgi_pins(settings, target_uwsgis(settings))
        if pins:
            pin_metadata_dir(metadata_directory / dist_info, pins)
    return dist_info
