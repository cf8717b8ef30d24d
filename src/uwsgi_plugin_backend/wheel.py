"""Assemble the plugin wheel: build the plugins once per target uWSGI ABI,
stage the generated runtime module and build records, and let
scikit-build-core write the wheel."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Iterator

from .config import (
    ConfigSettings,
    ProjectConfig,
    foreign_settings,
    jobs_setting,
    load_config,
    load_pyproject,
    setting_flag,
    setting_values,
    verbose_setting,
)
from .entry_points import check_entry_points, user_package_dir
from .errors import BackendError, log
from .find_uwsgi import ChosenUwsgi, find_uwsgis
from .pin_metadata import owning_distribution, pin_metadata_dir, pin_wheel
from .platform_tags import choose_platform, plain_platform_tag
from .plugin_build import BuildOptions, plugin_name
from .runtime._uwsgi_plugin import BUILDS_DIR
from .uwsgi_builds import UwsgiBuild, build_for, distinct_kits
from .wheel_files import place
from .locking import locked

def skbuild() -> ModuleType:
    """scikit_build_core.build, imported only once pyproject.toml is known to be
    valid TOML: the module parses it on import and would fail with a traceback."""
    load_pyproject(Path.cwd())
    from scikit_build_core import build

    return build


RUNTIME_MODULE = Path(__file__).parent / "runtime" / "_uwsgi_plugin.py"
GENERATED_INIT = "from ._uwsgi_plugin import plugin_dir\n\n__all__ = [\"plugin_dir\"]\n"
GENERATED_MAIN = "from ._uwsgi_plugin import main\n\nraise SystemExit(main())\n"


def skbuild_settings(config_settings: ConfigSettings | None, tags: list[str] | None = None) -> dict[str, str | list[str]]:
    """scikit-build-core settings for a CMake-free platform wheel."""
    return {
        **foreign_settings(config_settings),
        "wheel.cmake": "false",
        "wheel.platlib": "true",
        "wheel.py-api": "py3",
        "wheel.tags": ";".join(tags or [f"py3-none-{plain_platform_tag()}"]),
        # No CMake runs; naming a version stops scikit-build-core looking for CMakeLists.txt.
        "cmake.version": ">=3.15",
    }


def plugin_names(config: ProjectConfig, work: Path) -> list[str]:
    names = [
        plugin_name(source, work / f"check-{index}", work, config.allow_outside_sources)
        for index, source in enumerate(config.plugin_dirs)
    ]
    for name in set(names):
        if names.count(name) > 1:
            raise BackendError(f"two plugin directories both build a plugin named {name!r}; give each its own NAME")
    return names


@contextlib.contextmanager
def staged_package(config: ProjectConfig) -> Iterator[Path]:
    """A fresh directory holding the runtime module (and __init__/__main__ unless
    the project has its own), to which the builds are added; the wheel is
    written beside it. Always a temporary directory: its path goes to
    scikit-build-core in settings that split on ';'."""
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        if ";" in tmp:
            raise BackendError(f"the temporary directory {tmp} has a ';' in its path; set TMPDIR to a plainer one")
        staging = Path(tmp) / "staging" / config.package
        own = user_package_dir(config)
        staging.mkdir(parents=True)
        shutil.copyfile(RUNTIME_MODULE, staging / "_uwsgi_plugin.py")
        for filename, text in (("__init__.py", GENERATED_INIT), ("__main__.py", GENERATED_MAIN)):
            if own is None or not (own / filename).exists():
                (staging / filename).write_text(text)
        yield staging


def _package_settings(config: ProjectConfig, staging: Path) -> dict[str, str]:
    """Ship the staged files as the import package, beside the project's own
    package of the same name when there is one (its files win)."""
    own = user_package_dir(config)
    if own is None:
        return {"wheel.packages": str(staging)}
    return {
        "wheel.packages": str(own.relative_to(config.root)),
        f"wheel.force-include.{staging}": config.package,
    }


def wheel_tags(builds: list[UwsgiBuild]) -> list[str]:
    """interpreter-abi-platform tags: the platform from the plugins' ELF; a
    pyuwsgi build ties the wheel to the Python its pyuwsgi module is for."""
    modules = {build.pyuwsgi for build in builds if build.pyuwsgi}
    choice = choose_platform(
        [plugin.shared_object for build in builds for plugin in build.plugins],
        provided={module.path.name for module in modules},
        hosts=[build.kit.binary for build in builds],
    )
    if choice.is_portable:
        log(f"platform tag {'.'.join(choice.tags)}, read from the plugins' ELF")
    else:
        needs = "; ".join(f"{name} needs {', '.join(libs)}" for name, libs in choice.outside_policy.items())
        log(
            f"platform tag {choice.tags[0]}, not manylinux: {needs}, outside every manylinux policy. "
            "PyPI refuses this tag; run `auditwheel repair` on the wheel to bundle the library and retag it"
        )
    python_tags = {module.python_tag for module in modules}
    if len(python_tags) > 1:
        raise BackendError(f"the pyuwsgi binaries are for different Pythons ({', '.join(sorted(python_tags))}); build one wheel per Python")
    interpreter_abi = "-".join([python_tags.pop()] * 2) if python_tags else "py3-none"  # cp311-cp311
    return [f"{interpreter_abi}-{platform}" for platform in choice.tags]


def uwsgi_pins(config: ProjectConfig, chosen: list[ChosenUwsgi]) -> list[str] | None:
    """With pin-uwsgi: ``uwsgi==X`` / ``pyuwsgi==X`` for the distribution the target binary belongs to."""
    if not config.pin_uwsgi:
        return None
    if "dependencies" not in config.project.get("dynamic", []):
        raise BackendError(
            "pin-uwsgi = true makes the wheel's dependencies depend on the uwsgi it is built for, "
            "which PEP 621 allows only for dynamic fields: add dynamic = [\"dependencies\"] to [project] "
            "(and remove a static dependencies list)"
        )
    pins = set()
    for target in chosen:
        owner = owning_distribution(target.path)
        if owner is None:
            log(f"pin-uwsgi: {target.path} belongs to no installed Python distribution; nothing to pin for it")
            continue
        pins.add(f"{owner[0]}=={owner[1]}")
    if len(pins) > 1:
        raise BackendError(f"pin-uwsgi: the target binaries come from {', '.join(sorted(pins))}; a wheel can pin only one")
    if pins:
        log(f"pin-uwsgi: Requires-Dist {', '.join(pins)}")
    return sorted(pins)


@contextlib.contextmanager
def build_root(config_settings: ConfigSettings | None) -> Iterator[Path]:
    """-C build-dir=PATH, kept for incremental rebuilds; else a temporary directory."""
    values = setting_values(config_settings, "build-dir")
    if not values:
        with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
            yield Path(tmp)
        return
    root = Path(values[-1]).absolute()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackendError(f"cannot use -C build-dir={values[-1]}: {error.strerror}") from None
    # One build at a time in a build directory; others wait (see locking.py).
    with locked(root / ".lock", f"the build directory {root}"):
        log(f"build directory {root} (kept: unchanged objects are reused)")
        yield root


def target_uwsgis(config: ProjectConfig, config_settings: ConfigSettings | None) -> list[ChosenUwsgi]:
    return find_uwsgis(setting_values(config_settings, "uwsgi"), config.uwsgi, config.root)


def compile_plugins(config: ProjectConfig, config_settings: ConfigSettings | None, chosen: list[ChosenUwsgi],
                    root: Path, kept: bool) -> list[UwsgiBuild]:
    """Build the project's plugins once per distinct ABI of the ``chosen`` binaries, in ``root``."""
    kits = distinct_kits(chosen)
    options = BuildOptions(
        root=root, kept=kept, jobs=jobs_setting(config_settings), strip=setting_flag(config_settings, "strip", config.strip),
        verbose=verbose_setting(config_settings), allow_outside=config.allow_outside_sources,
    )
    # Checked before compiling: a missing declaration is known without a compiler.
    names = plugin_names(config, root)
    check_entry_points(config, names)
    return [build_for(kit, config, names, options) for kit in kits]


def write_wheel(config: ProjectConfig, config_settings: ConfigSettings | None, builds: list[UwsgiBuild], staging: Path,
                wheel_directory: str, pins: list[str] | None) -> str:
    """scikit-build-core writes the wheel of the staged package aside; it is moved
    into ``wheel_directory`` whole, so a failure leaves no partial wheel behind."""
    settings = {**skbuild_settings(config_settings, wheel_tags(builds)), **_package_settings(config, staging)}
    out = staging.parent.parent / "out"
    # Not the prepared metadata: its WHEEL file cannot know the tag read from the built ELF.
    wheel_name = skbuild().build_wheel(str(out), settings, None)
    runtime = f"{config.package}/_uwsgi_plugin.py"
    with zipfile.ZipFile(out / wheel_name) as written:
        complete = runtime in written.namelist()
    if not complete:
        raise BackendError(f"internal error: scikit-build-core wrote {wheel_name} without {runtime}; please report it")
    if pins:
        pin_wheel(out / wheel_name, pins)
    place(out / wheel_name, Path(wheel_directory))
    log(f"wrote {wheel_name}")
    return wheel_name


def build_plugin_wheel(wheel_directory: str, config_settings: ConfigSettings | None) -> str:
    config = load_config(Path.cwd())
    chosen = target_uwsgis(config, config_settings)
    pins = uwsgi_pins(config, chosen)
    with build_root(config_settings) as work, staged_package(config) as staging:
        builds = compile_plugins(config, config_settings, chosen, work, kept=bool(setting_values(config_settings, "build-dir")))
        for build in builds:
            build.stage(config, staging / BUILDS_DIR.name)
        return write_wheel(config, config_settings, builds, staging, wheel_directory, pins)


def build_plugin_editable(wheel_directory: str, config_settings: ConfigSettings | None) -> str:
    from .editable import build_in_place

    config = load_config(Path.cwd())
    chosen = target_uwsgis(config, config_settings)
    pins = uwsgi_pins(config, chosen)
    builds, builds_dir = build_in_place(config, config_settings, chosen)
    with staged_package(config) as staging:
        (staging / "_editable.json").write_text(json.dumps({"builds_dir": str(builds_dir)}) + "\n")
        return write_wheel(config, config_settings, builds, staging, wheel_directory, pins)


def prepare_plugin_metadata(metadata_directory: str, config_settings: ConfigSettings | None) -> str:
    config = load_config(Path.cwd())
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        check_entry_points(config, plugin_names(config, Path(tmp)))
    dist_info = skbuild().prepare_metadata_for_build_wheel(metadata_directory, skbuild_settings(config_settings))
    if config.pin_uwsgi:
        pins = uwsgi_pins(config, target_uwsgis(config, config_settings))
        if pins:
            pin_metadata_dir(Path(metadata_directory) / dist_info, pins)
    return dist_info


def build_plugin_sdist(sdist_directory: str, config_settings: ConfigSettings | None) -> str:
    config = load_config(Path.cwd())
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        check_entry_points(config, plugin_names(config, Path(tmp)))
        out = Path(tmp) / "out"
        sdist_name = skbuild().build_sdist(str(out), skbuild_settings(config_settings))
        place(out / sdist_name, Path(sdist_directory))
    return sdist_name
