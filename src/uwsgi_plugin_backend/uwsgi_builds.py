"""One build of the project's plugins per distinct uWSGI ABI: the kit read
from each target binary, the plugins compiled for it, and the record that
the runtime module selects builds by."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from . import __version__
from .config import ProjectConfig
from .errors import log
from .find_uwsgi import ChosenUwsgi
from .kit import UwsgiKit
from .kit_cache import read_kit
from .plugin_build import BuildOptions, BuiltPlugin, build_plugin
from .pyuwsgi import PyuwsgiModule, find_pyuwsgi_module


@dataclasses.dataclass(frozen=True)
class UwsgiBuild:
    kit: UwsgiKit
    plugins: list[BuiltPlugin]
    pyuwsgi: PyuwsgiModule | None

    def record(self, config: ProjectConfig) -> dict[str, object]:
        return {
            "distribution": config.name,
            "plugins": [plugin.name for plugin in self.plugins],
            "abi_key": self.kit.abi_key,
            # What the runtime module's record_fits compares with a uwsgi binary.
            "dot_h_hash": self.kit.dot_h_hash,
            "platform": self.kit.platform,
            "layout_macros": self.kit.layout_macros,
            "abi_defines": self.kit.abi_defines,
            "summary": self.kit.abi_summary,
            "uwsgi_version": self.kit.version,
            "uwsgi_cflags": self.kit.cflags,
            "pyuwsgi_module": self.pyuwsgi.path.name if self.pyuwsgi else None,
            "built_by": f"uwsgi-plugin-backend {__version__}",
        }

    def stage(self, config: ProjectConfig, builds_dir: Path) -> None:
        """Copy the plugins and their record into ``builds_dir/<ABI directory>/``."""
        target = builds_dir / self.kit.build_dir_name
        target.mkdir(parents=True)
        for plugin in self.plugins:
            shutil.copyfile(plugin.shared_object, target / plugin.shared_object.name)
        (target / "build.json").write_text(json.dumps(self.record(config), indent=2, sort_keys=True) + "\n")


def distinct_kits(chosen: list[ChosenUwsgi]) -> list[UwsgiKit]:
    """Read each binary's kit; binaries with the same ABI key are built for once."""
    kits: dict[str, UwsgiKit] = {}
    for target in chosen:
        log(f"building for {target.path} ({target.reason})")
        kit = read_kit(target.path)
        if kit.abi_key in kits:
            log(f"  {target.path} has the ABI of {kits[kit.abi_key].binary} ({kit.abi_key}); one build serves both")
            continue
        log(f"  {kit.abi_summary}, ABI key {kit.abi_key}")
        kits[kit.abi_key] = kit
    return list(kits.values())


def mismatch_fix(config: ProjectConfig) -> str:
    return (
        f"Use the build for this uwsgi: --plugins-dir \"$(python -m {config.package} --uwsgi /path/to/this/uwsgi)\", "
        f"or build one: pip install --no-binary {config.name} --force-reinstall {config.name}"
    )


def build_for(kit: UwsgiKit, config: ProjectConfig, names: list[str], options: BuildOptions) -> UwsgiBuild:
    """Build every plugin of the project for ``kit``'s uwsgi in <build dir>/<its ABI directory>."""
    work = options.root / kit.build_dir_name
    kit_dir = kit.directory
    if kit_dir is None:  # no writable cache: a copy for this build only
        kit_dir = work / "kit"
        kit.write(kit_dir)
    pyuwsgi = find_pyuwsgi_module(kit)
    if pyuwsgi:
        log(f"  a pyuwsgi build: the plugins link against {pyuwsgi.path}")
    plugins = []
    for index, (source, name) in enumerate(zip(config.plugin_dirs, names)):
        plugin_work = work / f"plugin-{index}"
        link_flags = pyuwsgi.link_flags(plugin_work / "link", "../../../link") if pyuwsgi else []
        plugins.append(build_plugin(kit, kit_dir, source, plugin_work, options, name, mismatch_fix(config), link_flags))
    return UwsgiBuild(kit=kit, plugins=plugins, pyuwsgi=pyuwsgi)
