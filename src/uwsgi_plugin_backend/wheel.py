"""Assemble the plugin wheel: build every plugin, stage the generated runtime
module and build record, and let scikit-build-core write the wheel."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from scikit_build_core import build as skbuild

from . import __version__
from .config import ConfigSettings, ProjectConfig, foreign_settings, load_config, setting_flag, setting_values
from .entry_points import check_entry_points, user_package_dir
from .errors import BackendError, log
from .find_uwsgi import find_uwsgi
from .kit import UwsgiKit, read_kit
from .platform_tags import choose_platform, plain_platform_tag
from .plugin_build import BuiltPlugin, build_plugin, plugin_name

RUNTIME_MODULE = Path(__file__).parent / "runtime" / "_uwsgi_plugin.py"
GENERATED_INIT = "from ._uwsgi_plugin import plugin_dir\n\n__all__ = [\"plugin_dir\"]\n"
GENERATED_MAIN = "from ._uwsgi_plugin import main\n\nraise SystemExit(main())\n"


def skbuild_settings(config_settings: ConfigSettings | None, platforms: list[str] | None = None) -> dict[str, str | list[str]]:
    """scikit-build-core settings for a CMake-free platform wheel."""
    return {
        **foreign_settings(config_settings),
        "wheel.cmake": "false",
        "wheel.platlib": "true",
        "wheel.py-api": "py3",
        "wheel.tags": ";".join(f"py3-none-{platform}" for platform in platforms or [plain_platform_tag()]),
        # No CMake runs; naming a version stops scikit-build-core looking for CMakeLists.txt.
        "cmake.version": ">=3.15",
    }


def build_id(kit: UwsgiKit) -> str:
    """A directory name that is an importable path (check-wheel-contents W004)."""
    digest = hashlib.sha256(kit.dot_h + b"\0" + kit.cflags.encode()).hexdigest()[:12]
    return re.sub(r"\W", "_", f"uwsgi_{kit.version}_{digest}")


def build_record(config: ProjectConfig, kit: UwsgiKit, plugins: list[BuiltPlugin]) -> dict[str, object]:
    """What the plugins were built for; the runtime module selects builds by it."""
    return {
        "distribution": config.name,
        "plugins": [plugin.name for plugin in plugins],
        "uwsgi_version": kit.version,
        "uwsgi_cflags": kit.cflags,
        "uwsgi_h_sha256": hashlib.sha256(kit.dot_h).hexdigest(),
        "built_by": f"uwsgi-plugin-backend {__version__}",
    }


def plugin_names(config: ProjectConfig, work: Path) -> list[str]:
    return [plugin_name(source, work / f"check-{index}") for index, source in enumerate(config.plugin_dirs)]


def _check_unique(plugins: list[BuiltPlugin]) -> None:
    names = [plugin.name for plugin in plugins]
    for name in set(names):
        if names.count(name) > 1:
            raise BackendError(f"two plugin directories both build a plugin named {name!r}; give each its own NAME")


def _stage_package(config: ProjectConfig, kit: UwsgiKit, plugins: list[BuiltPlugin], staging: Path) -> None:
    """Write what the backend adds to the import package into ``staging``."""
    own = user_package_dir(config)
    staging.mkdir(parents=True)
    shutil.copyfile(RUNTIME_MODULE, staging / "_uwsgi_plugin.py")
    for filename, text in (("__init__.py", GENERATED_INIT), ("__main__.py", GENERATED_MAIN)):
        if own is None or not (own / filename).exists():
            (staging / filename).write_text(text)
    build_dir = staging / "uwsgi_builds" / build_id(kit)
    build_dir.mkdir(parents=True)
    for plugin in plugins:
        shutil.copyfile(plugin.shared_object, build_dir / plugin.shared_object.name)
    record = build_record(config, kit, plugins)
    (build_dir / "build.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


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


def strip_debug_info(shared_object: Path) -> None:
    strip = shutil.which("strip")
    if strip is None:
        raise BackendError("strip = true needs the strip program (binutils); install binutils or set strip = false")
    subprocess.run([strip, "--strip-debug", str(shared_object)], check=True)


def _platform_tags(plugins: list[BuiltPlugin]) -> list[str]:
    choice = choose_platform([plugin.shared_object for plugin in plugins])
    if choice.is_portable:
        log(f"platform tag {'.'.join(choice.tags)}, read from the plugins' ELF")
    else:
        needs = "; ".join(f"{name} needs {', '.join(libs)}" for name, libs in choice.outside_policy.items())
        log(
            f"platform tag {choice.tags[0]}, not manylinux: {needs}, outside every manylinux policy. "
            "PyPI refuses this tag; run `auditwheel repair` on the wheel to bundle the library and retag it"
        )
    return choice.tags


def build_plugin_wheel(wheel_directory: str, config_settings: ConfigSettings | None) -> str:
    config = load_config(Path.cwd())
    chosen = find_uwsgi(setting_values(config_settings, "uwsgi"), config.uwsgi, config.root)
    log(f"building for {chosen.path} ({chosen.reason})")
    kit = read_kit(chosen.path)
    log(f"uWSGI {kit.version}; its build kit read from the binary")
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        work = Path(tmp)
        # Checked before compiling: a missing declaration is known without a compiler.
        check_entry_points(config, plugin_names(config, work))
        kit_dir = work / "kit"
        kit.write(kit_dir)
        plugins = [
            build_plugin(kit_dir, kit.cflags, source, work / f"plugin-{index}")
            for index, source in enumerate(config.plugin_dirs)
        ]
        _check_unique(plugins)
        if setting_flag(config_settings, "strip", config.strip):
            for plugin in plugins:
                strip_debug_info(plugin.shared_object)
        staging = work / "staging" / config.package
        _stage_package(config, kit, plugins, staging)
        settings = {**skbuild_settings(config_settings, _platform_tags(plugins)), **_package_settings(config, staging)}
        # Written aside and moved in whole, so a failure leaves no partial wheel behind.
        out = work / "out"
        # Not the prepared metadata: its WHEEL file cannot know the tag read from the built ELF.
        wheel_name = skbuild.build_wheel(str(out), settings, None)
        Path(wheel_directory).mkdir(parents=True, exist_ok=True)
        shutil.move(str(out / wheel_name), Path(wheel_directory) / wheel_name)
    log(f"wrote {wheel_name}")
    return wheel_name


def prepare_plugin_metadata(metadata_directory: str, config_settings: ConfigSettings | None) -> str:
    config = load_config(Path.cwd())
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        check_entry_points(config, plugin_names(config, Path(tmp)))
    return skbuild.prepare_metadata_for_build_wheel(metadata_directory, skbuild_settings(config_settings))


def build_plugin_sdist(sdist_directory: str, config_settings: ConfigSettings | None) -> str:
    config = load_config(Path.cwd())
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        check_entry_points(config, plugin_names(config, Path(tmp)))
        out = Path(tmp) / "out"
        sdist_name = skbuild.build_sdist(str(out), skbuild_settings(config_settings))
        Path(sdist_directory).mkdir(parents=True, exist_ok=True)
        shutil.move(str(out / sdist_name), Path(sdist_directory) / sdist_name)
    return sdist_name
