"""The wheel builder: the plugins built once per target uWSGI ABI, staged
with the runtime module and build records, and written by scikit-build-core."""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendError, log, warn
from ..plugin_build import warmup
from ..plugin_build.builds import UwsgiBuild, build_root, compile_plugins
from ..runtime_api import BUILDS_DIR
from ..settings import Settings
from ..target_uwsgi.find import ChosenUwsgi, find_uwsgis
from . import last_wheel
from .staging import staged_package


def target_uwsgis(settings: Settings) -> list[ChosenUwsgi]:
    return find_uwsgis(settings.uwsgi, settings.uwsgi_origin, settings.uwsgi_base)


def uwsgi_pins(settings: Settings, chosen: list[ChosenUwsgi]) -> list[str] | None:
    if not settings.pin_uwsgi:
        return None
    from .pins import uwsgi_pins as pins

    return pins(settings, chosen)


def write_wheel(settings: Settings, builds: list[UwsgiBuild], staging: Path, wheel_directory: Path,
                pins: list[str] | None) -> str:
    """scikit-build-core writes the wheel of the staged package aside; it is moved
    into ``wheel_directory`` whole, so a failure leaves no partial wheel behind."""
    import zipfile

    from .files import place
    from .skbuild import package_settings, skbuild, skbuild_settings
    from .tags import wheel_tags

    skbuild_config = {**skbuild_settings(settings, wheel_tags(builds)), **package_settings(settings, staging)}
    out = staging.parent.parent / "out"
    # Not the prepared metadata: its WHEEL file cannot know the tag read from the built ELF.
    wheel_name: str = skbuild().build_wheel(str(out), skbuild_config, None)
    runtime = f"{settings.package}/_uwsgi_plugin.py"
    with zipfile.ZipFile(out / wheel_name) as written:
        complete = runtime in written.namelist()
    if not complete:
        raise BackendError(f"internal error: scikit-build-core wrote {wheel_name} without {runtime}; please report it")
    if pins:
        from .pins import pin_wheel

        pin_wheel(out / wheel_name, pins)
    place(out / wheel_name, wheel_directory)
    log(f"wrote {wheel_name}")
    return wheel_name


def build_plugin_wheel(settings: Settings, wheel_directory: Path) -> str:
    chosen = target_uwsgis(settings)
    pins = uwsgi_pins(settings, chosen)
    with build_root(settings.build_dir, settings.machine.lock_timeout) as work:
        inputs = last_wheel.build_inputs(settings, chosen, work, wheel_directory) if settings.build_dir else None
        if inputs and (name := last_wheel.reuse(work, inputs, wheel_directory)):
            _remind_fallback(name, chosen)
            return name
        name = _build_plugin_wheel(settings, chosen, pins, work, wheel_directory)
        if inputs:
            last_wheel.remember(work, inputs, wheel_directory / name)
        _remind_fallback(name, chosen)
        return name


def _remind_fallback(name: str, chosen: list[ChosenUwsgi]) -> None:
    """The last lines of a log are the ones read: repeat a choice made by PATH there."""
    for target in chosen:
        if target.fallback:
            warn(f"{name} is built for {target.path}, the uwsgi found on PATH (see above); if you will run "
                 "another, name it: -C uwsgi=PATH")


# What write_wheel imports: loaded in a thread while the compiler driver runs (plugin_build.warmup).
WHEEL_WRITER_MODULES = ("scikit_build_core.build.wheel", f"{__package__}.platform_tags", f"{__package__}.files",
                        f"{__package__.rpartition('.')[0]}.plugin_build.symbols",
                        f"{__package__.rpartition('.')[0]}.plugin_build.needs")


def _build_plugin_wheel(settings: Settings, chosen: list[ChosenUwsgi], pins: list[str] | None, work: Path,
                        wheel_directory: Path) -> str:
    warmup.prepare(*WHEEL_WRITER_MODULES)
    with staged_package(settings) as staging:
        builds = compile_plugins(settings, chosen, work, kept=settings.build_dir is not None)
        for build in builds:
            build.stage(settings.name, staging / BUILDS_DIR.name / build.abi.build_dir_name)
        if settings.ship_sources:
            from .shipped_sources import stage_sources

            stage_sources(settings, staging, work)
        warmup.finish()
        return write_wheel(settings, builds, staging, wheel_directory, pins)
